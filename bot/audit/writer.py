"""What the bot records (messages, verdicts, actions, reviews), written by one thread off-loop."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.audit.records import Entry, Sealed, seal
from bot.audit.store import Archive, ArchiveError
from bot.domain import Finding, Message, Verdict

MAX_BATCH = 512  # records per transaction at most (group commit)

# What reviewers decide (regulation notes: Resolve / False positive / Escalate / Notify).
REVIEW_DECISIONS = ("resolved", "false_positive", "escalated", "notified", "note")


def _finding(finding: Finding) -> dict[str, Any]:
    # Spelled out rather than dataclasses.asdict, which deep-copies and was a third of the
    # cost of archiving a message.
    return {
        "rule_id": finding.rule_id,
        "category": finding.category.value,
        "severity": finding.severity.label,
        "start": finding.start,
        "end": finding.end,
        "score": finding.score,
        "why": finding.why,
        "title": finding.title,
        "redact": finding.redact,
    }


def message_entry(
    message: Message, verdict: Verdict, *, screened_at: float, latency_ms: float
) -> Entry:
    """Every screened message, clean or not: original text, people, places, times, verdict."""
    return Entry(
        record_key=f"message:{message.id}",
        kind="message",
        message_id=message.id,
        conversation_id=message.conversation_id,
        sender_id=message.sender_id,
        categories=tuple(c.value for c in verdict.categories),
        at=screened_at,
        payload={
            "text": message.text,
            "sender_name": message.sender_name,
            "sender_staff_id": message.sender_staff_id,
            "conversation_title": message.conversation_title,
            "source": message.source,
            "sent_at": message.sent_at.isoformat()
            if isinstance(message.sent_at, datetime)
            else None,
            "screened_at": screened_at,
            "latency_ms": round(latency_ms, 3),
            "rules_version": verdict.rules_version,
            "severity": verdict.severity.label if verdict.severity is not None else None,
            "actions": [a.value for a in verdict.actions],
            "rule_ids": sorted({f.rule_id for f in verdict.findings}),
            "findings": [_finding(f) for f in verdict.findings],
            # Seen but under the threshold: answers "why did the bot not act on this?"
            "below_threshold": [_finding(f) for f in verdict.below_threshold],
            "redacted": verdict.redacted,
        },
    )


def action_entry(
    message: Message, action: str, status: str, detail: dict[str, Any], *, key: str | None = None
) -> Entry:
    """An action taken or failed (warning sent, escalation failed, retrying, error...).

    ``key`` makes the record idempotent (``action:<msgId>:<key>``), e.g. ``warn:sent`` or
    ``warn:failed:2``: a replay after a crash adds nothing, while a failure followed by a
    success is kept as both. Without it every call is a new record.
    """
    return Entry(
        record_key=f"action:{message.id}:{key or uuid.uuid4().hex}",
        kind="action",
        message_id=message.id,
        conversation_id=message.conversation_id,
        sender_id=message.sender_id,
        categories=(),
        at=time.time(),
        payload={"action": action, "status": status, "detail": detail},
    )


def review_entry(
    message_id: str,
    reviewer: str,
    decision: str,
    note: str,
    *,
    conversation_id: str = "",
    sender_id: str = "",
    key: str | None = None,
) -> Entry:
    """A compliance reviewer's later decision on a message (appended, never edited).

    ``conversation_id`` and ``sender_id`` are those of the reviewed message, so group exports
    and data-access requests find the review with the message.
    """
    if decision not in REVIEW_DECISIONS:
        raise ValueError(
            f"unknown review decision {decision!r}; use {', '.join(REVIEW_DECISIONS)}"
        )
    return Entry(
        record_key=f"review:{message_id}:{key or uuid.uuid4().hex}",
        kind="review",
        message_id=message_id,
        conversation_id=conversation_id,
        sender_id=sender_id,
        categories=(),
        at=time.time(),
        payload={"reviewer": reviewer, "decision": decision, "note": note},
    )


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

    async def record_message(
        self, message: Message, verdict: Verdict, *, screened_at: float, latency_ms: float
    ) -> int:
        """Archive a screened message with its verdict; its seq."""
        entry = message_entry(message, verdict, screened_at=screened_at, latency_ms=latency_ms)
        (seq,) = await self.record([entry])
        return seq

    async def record_action(
        self,
        message: Message,
        action: str,
        status: str,
        detail: dict[str, Any],
        *,
        key: str | None = None,
    ) -> int:
        """Archive an action's outcome (see :func:`action_entry`); its seq."""
        (seq,) = await self.record([action_entry(message, action, status, detail, key=key)])
        return seq

    async def record_review(
        self, message: Message, reviewer: str, decision: str, note: str, *, key: str | None = None
    ) -> int:
        """Archive a reviewer's decision on ``message``; its seq."""
        entry = review_entry(
            message.id,
            reviewer,
            decision,
            note,
            conversation_id=message.conversation_id,
            sender_id=message.sender_id,
            key=key,
        )
        (seq,) = await self.record([entry])
        return seq

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
