"""What the bot records (messages, verdicts, actions, reviews); written off the event loop."""

from __future__ import annotations

import asyncio
import base64
import queue
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import asdict
from datetime import datetime
from typing import Any

from bot.audit.keys import KeyRing
from bot.audit.store import Archive, Entry, Sealed, seal
from bot.domain import Message, Verdict

_BATCH = 512  # records per transaction at most (group commit)


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
            "findings": [
                {**asdict(f), "category": f.category.value, "severity": f.severity.label}
                for f in verdict.findings
            ],
            "redacted": verdict.redacted,
        },
    )


def action_entry(
    message: Message, action: str, status: str, detail: dict[str, Any], *, key: str | None = None
) -> Entry:
    """An action taken or failed (warning sent, escalation failed, retry...)."""
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


def review_entry(message: Message, reviewer: str, decision: str, note: str) -> Entry:
    """A compliance reviewer's later decision on a message (appended, never edited)."""
    return Entry(
        record_key=f"review:{message.id}:{uuid.uuid4().hex}",
        kind="review",
        message_id=message.id,
        conversation_id=message.conversation_id,
        sender_id=message.sender_id,
        categories=(),
        at=time.time(),
        payload={"reviewer": reviewer, "decision": decision, "note": note},
    )


class AsyncArchive:
    """Async facade: one writer thread batches records; ``await`` returns only after COMMIT.

    SQLite writes block, so they never run on the event loop; and because each call waits
    for its commit, the bot never reports a record as archived before it is on disk.
    """

    def __init__(self, archive: Archive) -> None:
        """Start the writer thread for ``archive``."""
        self.archive = archive
        self._queue: queue.Queue[tuple[list[Sealed], Future[list[int]]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    async def record(self, entries: list[Entry]) -> list[int]:
        """Append ``entries``; raises ArchiveError if they could not be written."""
        sealed = [seal(e, self.archive.ring) for e in entries]
        future: Future[list[int]] = Future()
        self._queue.put((sealed, future))
        return await asyncio.wrap_future(future)

    async def record_message(
        self, message: Message, verdict: Verdict, *, screened_at: float, latency_ms: float
    ) -> int:
        """Archive a screened message with its verdict."""
        (seq,) = await self.record(
            [message_entry(message, verdict, screened_at=screened_at, latency_ms=latency_ms)]
        )
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
        """Archive an action's outcome."""
        (seq,) = await self.record([action_entry(message, action, status, detail, key=key)])
        return seq

    def close(self) -> None:
        """Finish queued writes, checkpoint and close."""
        self._queue.put(None)
        self._thread.join()
        self.archive.close()

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < _BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._write(batch)

    def _write(self, batch: list[tuple[list[Sealed], Future[list[int]]]]) -> None:
        records = [sealed for entries, _ in batch for sealed in entries]
        try:
            seqs = self.archive.append_sealed(records)
        except Exception as error:  # noqa: BLE001  (handed to every waiting caller)
            for _, future in batch:
                future.set_exception(error)
            return
        position = 0
        for entries, future in batch:
            future.set_result(seqs[position : position + len(entries)])
            position += len(entries)


# -- several replicas: a Redis Stream in front of one archiver -------------------------------
STREAM = "compliance:audit"
GROUP = "archivers"


def sealed_to_fields(sealed: Sealed) -> dict[str, str]:
    """Stream fields for a sealed record (already encrypted: Redis never sees plaintext)."""
    fields = asdict(sealed)
    fields["nonce"] = base64.b64encode(sealed.nonce).decode()
    fields["ciphertext"] = base64.b64encode(sealed.ciphertext).decode()
    fields["at"] = repr(sealed.at)
    return {k: str(v) for k, v in fields.items()}


def fields_to_sealed(fields: dict[str, str]) -> Sealed:
    """The inverse of :func:`sealed_to_fields`."""
    return Sealed(
        record_key=fields["record_key"], kind=fields["kind"], message_id=fields["message_id"],
        conversation_id=fields["conversation_id"], sender_ref=fields["sender_ref"],
        categories=fields["categories"], at=float(fields["at"]), key_id=fields["key_id"],
        nonce=base64.b64decode(fields["nonce"]), ciphertext=base64.b64decode(fields["ciphertext"]),
    )  # fmt: skip


class RedisArchiveSink:
    """A replica's writer: seal locally, XADD to the shared stream (the archiver chains it)."""

    def __init__(self, redis: Any, ring: KeyRing, stream: str = STREAM) -> None:
        """``redis`` is a ``redis.asyncio.Redis`` with decode_responses=True."""
        self._redis = redis
        self._ring = ring
        self.stream = stream

    async def record(self, entries: list[Entry]) -> list[str]:
        """Append to the stream; returns stream ids (durable once Redis acknowledges)."""
        ids = []
        for entry in entries:
            ids.append(
                str(await self._redis.xadd(self.stream, sealed_to_fields(seal(entry, self._ring))))
            )
        return ids


class Archiver:
    """The one consumer group that turns the stream into the hash chain, at least once.

    A record is XACKed only after its transaction commits; a crash before that leaves it
    pending, and ``claim_idle`` hands it to the next archiver. Re-writing is harmless:
    ``record_key`` is unique, so a second copy is ignored.
    """

    def __init__(
        self,
        redis: Any,
        archive: Archive,
        *,
        consumer: str = "archiver-1",
        stream: str = STREAM,
        group: str = GROUP,
    ) -> None:
        """Bind to ``stream``/``group``; the group is created if missing."""
        self._redis = redis
        self.archive = archive
        self.consumer = consumer
        self.stream = stream
        self.group = group

    async def ensure_group(self) -> None:
        """Create the consumer group (and stream) if they do not exist yet."""
        try:
            await self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except Exception as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def run_once(
        self, *, block_ms: int = 200, count: int = _BATCH, claim_idle_ms: int = 30_000
    ) -> int:
        """Claim idle pending records, read new ones, chain and acknowledge them."""
        await self.ensure_group()
        claimed = await self._redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=claim_idle_ms,
            start_id="0-0",
            count=count,
        )
        entries: list[tuple[str, dict[str, str]]] = list(claimed[1])
        response = await self._redis.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
        )
        for _stream, messages in response or []:
            entries.extend(messages)
        if not entries:
            return 0
        sealed = [fields_to_sealed(fields) for _id, fields in entries]
        await asyncio.to_thread(self.archive.append_sealed, sealed)
        await self._redis.xack(self.stream, self.group, *[stream_id for stream_id, _ in entries])
        return len(entries)
