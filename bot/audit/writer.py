"""The bot's archive writer: records sealed and committed in groups on one thread, off the loop."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bot.audit.records import Entry, Sealed, seal
from bot.audit.store import Archive, ArchiveError
from bot.infra.group_commit import GroupCommit

MAX_BATCH = 512  # records per transaction at most (group commit)
THREAD_NAME = "audit-writer"

_Result = list[int] | BaseException  # one caller's seqs, or why its records were not written


@dataclass(frozen=True, slots=True)
class _Job:
    """One caller's records: entries sealed in the writer thread, or sealed by a replica."""

    entries: Sequence[Entry] = ()
    sealed: Sequence[Sealed] = ()

    def size(self) -> int:
        """Records in this job (its weight towards a transaction's MAX_BATCH)."""
        return len(self.entries) + len(self.sealed)


def _name_thread() -> None:
    threading.current_thread().name = THREAD_NAME


class AsyncArchive:
    """Async facade: one writer thread seals and commits; ``await`` returns after COMMIT.

    SQLite writes and fsyncs block, and sealing is CPU, so neither runs on the event loop.
    Whatever is submitted while a transaction commits goes into the next one (group commit,
    :class:`~bot.infra.group_commit.GroupCommit`), so under load one fsync covers many
    records. Each call returns only once its own records are committed, and raises if they
    were not: the bot never reports a record as archived before it is on disk.
    """

    def __init__(self, archive: Archive, *, max_batch: int = MAX_BATCH) -> None:
        """Write to ``archive`` (which this facade now owns) from one dedicated thread."""
        self.archive = archive
        self.max_batch = max_batch
        # One thread: SQLite allows one writer anyway, and the records of one batch must be
        # chained in the order they were taken.
        self._executor = ThreadPoolExecutor(
            1, thread_name_prefix=THREAD_NAME, initializer=_name_thread
        )
        self._commits: GroupCommit[_Job, list[int]] = GroupCommit(
            self._apply, max_batch=max_batch, weight=_Job.size
        )
        self._accepting = threading.Lock()  # stop() may run on another thread
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None  # where the commits run

    async def record(self, entries: Sequence[Entry]) -> list[int]:
        """Append ``entries``; their seqs once committed.

        Raises:
            ArchiveError: they were not written (full disk, unwritable file, closed archive).
        """
        return await self._submit(_Job(entries=entries))

    async def record_sealed(self, batch: Sequence[Sealed]) -> list[int]:
        """Append records sealed elsewhere (the Redis archiver); see :meth:`record`."""
        return await self._submit(_Job(sealed=batch))

    async def _submit(self, job: _Job) -> list[int]:
        with self._accepting:
            if self._closed:
                raise ArchiveError("the archive is closed; the record was not written")
            self._loop = asyncio.get_running_loop()
        # A caller that gives up (cancelled) still gets its records written: more complete is
        # better for an audit trail, and it was never told they were archived.
        return await self._commits.submit(job)

    # -- closing -----------------------------------------------------------------------------
    def _refuse(self) -> None:
        with self._accepting:
            self._closed = True

    async def aclose(self) -> None:
        """Finish queued writes, checkpoint and close the archive, without blocking the loop.

        The way the bot closes it. Later records raise :class:`ArchiveError`.
        """
        self._refuse()
        await self._commits.flush()
        await asyncio.to_thread(self.close)

    def stop(self) -> None:
        """Finish queued writes and end the writer thread; later records raise ArchiveError.

        Blocking: from async code use ``await aclose()``, or run this in a thread
        (``asyncio.to_thread``). The commits run on the event loop that submitted them, so
        called on that loop's own thread with writes in flight it cannot wait for them, and
        raises RuntimeError instead of deadlocking.
        """
        self._refuse()
        loop = self._loop
        if loop is not None and loop.is_running():
            if _running_loop() is not loop:
                # Scheduled behind whatever the loop is doing now, so a record accepted just
                # before the refusal is among those waited for.
                asyncio.run_coroutine_threadsafe(self._commits.flush(), loop).result()
            elif not self._commits.idle:
                raise RuntimeError("AsyncArchive.stop() would block its event loop: aclose()")
        self._executor.shutdown(wait=True)

    def close(self) -> None:
        """Finish queued writes, checkpoint and close the archive (blocking; see :meth:`stop`)."""
        self.stop()
        self.archive.close()

    # -- the writer thread ---------------------------------------------------------------------
    async def _apply(self, jobs: list[_Job]) -> list[_Result]:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(self._write, jobs))
        except RuntimeError:  # the writer thread was stopped before this batch reached it
            raise ArchiveError("the archive is closed; the record was not written") from None

    def _write(self, jobs: list[_Job]) -> list[_Result]:
        """Seal each job, then commit them all in one transaction (at most ``max_batch``).

        GroupCommit never hands over more than ``max_batch`` records, except one call that
        alone holds more: that call is then its own transaction.
        """
        results: list[_Result] = [[] for _ in jobs]
        ready: list[tuple[int, list[Sealed]]] = []
        for index, job in enumerate(jobs):
            try:
                sealed = [seal(entry, self.archive.ring) for entry in job.entries]
            except Exception as error:  # noqa: BLE001  (one bad entry fails its caller only)
                results[index] = error
                continue
            ready.append((index, [*sealed, *job.sealed]))
        if not ready:
            return results
        try:
            seqs = self.archive.append_sealed([s for _, sealed in ready for s in sealed])
        except Exception as error:  # noqa: BLE001  (handed to every caller in the transaction)
            for index, _ in ready:
                results[index] = error
            return results
        position = 0
        for index, sealed in ready:
            results[index] = seqs[position : position + len(sealed)]
            position += len(sealed)
        return results


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
