"""The bot's archive writer: one thread seals and commits records in groups, off the event loop."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from bot.audit.records import Entry, Sealed, seal
from bot.audit.store import Archive, ArchiveError

MAX_BATCH = 512  # records per transaction at most (group commit)


@dataclass(slots=True)
class _Job:
    entries: Sequence[Entry] | None  # sealed by the writer thread ...
    sealed: Sequence[Sealed] | None  # ... or already sealed (by a replica)
    future: Future[list[int]]


class AsyncArchive:
    """Async facade: one writer thread seals and batches; ``await`` returns after COMMIT.

    SQLite writes and fsyncs block, and sealing is CPU, so neither runs on the event loop.
    Whatever is queued while a transaction commits goes into the next one (group commit), so
    under load one fsync covers many records. Each call returns only once its own records are
    committed, and raises if they were not: the bot never reports a record as archived before
    it is on disk.
    """

    def __init__(self, archive: Archive, *, max_batch: int = MAX_BATCH) -> None:
        """Start the writer thread for ``archive`` (which this facade now owns)."""
        self.archive = archive
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._accepting = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    async def record(self, entries: Sequence[Entry]) -> list[int]:
        """Append ``entries``; their seqs once committed.

        Raises:
            ArchiveError: they were not written (full disk, unwritable file, closed archive).
        """
        return await asyncio.wrap_future(self._submit(_Job(entries, None, Future())))

    async def record_sealed(self, batch: Sequence[Sealed]) -> list[int]:
        """Append records sealed elsewhere (the Redis archiver); see :meth:`record`."""
        return await asyncio.wrap_future(self._submit(_Job(None, batch, Future())))

    def _submit(self, job: _Job) -> Future[list[int]]:
        with self._accepting:
            if self._closed:
                raise ArchiveError("the archive is closed; the record was not written")
            self._queue.put(job)
        return job.future

    def stop(self) -> None:
        """Finish queued writes and end the writer thread; later records raise ArchiveError."""
        with self._accepting:
            if not self._closed:
                self._closed = True
                self._queue.put(None)
        self._thread.join()

    def close(self) -> None:
        """Finish queued writes, checkpoint and close the archive (blocking: call off-loop)."""
        self.stop()
        self.archive.close()

    async def aclose(self) -> None:
        """:meth:`close` from async code, without blocking the loop."""
        await asyncio.to_thread(self.close)

    # -- the writer thread ---------------------------------------------------------------
    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            batch, size, stop = [job], self._size(job), False
            while size < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
                size += self._size(more)
            self._write(batch)
            if stop:
                return

    @staticmethod
    def _size(job: _Job) -> int:
        return len(job.entries if job.entries is not None else job.sealed or ())

    def _write(self, batch: list[_Job]) -> None:
        ready: list[tuple[_Job, list[Sealed]]] = []
        for job in batch:
            # A caller that gave up (cancelled) still gets its records written: more complete
            # is better for an audit trail, and it was never told they were archived.
            job.future.set_running_or_notify_cancel()
            try:
                if job.entries is not None:
                    sealed = [seal(entry, self.archive.ring) for entry in job.entries]
                else:
                    sealed = list(job.sealed or ())
            except Exception as error:  # noqa: BLE001  (one bad entry fails its caller only)
                _fail(job, error)
                continue
            ready.append((job, sealed))
        try:
            seqs = self.archive.append_sealed([s for _, sealed in ready for s in sealed])
        except Exception as error:  # noqa: BLE001  (handed to every waiting caller)
            for job, _ in ready:
                _fail(job, error)
            return
        position = 0
        for job, sealed in ready:
            if not job.future.cancelled():
                job.future.set_result(seqs[position : position + len(sealed)])
            position += len(sealed)


def _fail(job: _Job, error: BaseException) -> None:
    if not job.future.cancelled():
        job.future.set_exception(error)
