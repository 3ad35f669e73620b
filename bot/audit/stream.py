"""Several replicas, one archive: sealed records on a Redis Stream, chained by one archiver."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bot.audit.keys import ArchiveKeyError, KeyRing
from bot.audit.records import KINDS, Entry, Sealed, seal, unseal
from bot.audit.store import Archive
from bot.audit.writer import MAX_BATCH, AsyncArchive

log = logging.getLogger(__name__)

STREAM = "compliance:audit"
GROUP = "archivers"
REJECTED_SUFFIX = ":rejected"  # malformed entries are moved here, never silently dropped

_Good = tuple[str, Sealed]  # stream id, the record to chain
_Rejected = tuple[str, Mapping[Any, Any], str]  # stream id, its fields, why


def sealed_to_fields(sealed: Sealed) -> dict[str, str]:
    """Stream fields for a sealed record (already encrypted: Redis never sees plaintext)."""
    fields = asdict(sealed)
    fields["nonce"] = base64.b64encode(sealed.nonce).decode()
    fields["ciphertext"] = base64.b64encode(sealed.ciphertext).decode()
    fields["at"] = repr(float(sealed.at))
    return {k: str(v) for k, v in fields.items()}


def fields_to_sealed(fields: Mapping[Any, Any]) -> Sealed:
    """The inverse of :func:`sealed_to_fields`; ValueError when an entry is malformed."""
    text = {
        (k.decode() if isinstance(k, bytes) else str(k)): (
            v.decode() if isinstance(v, bytes) else str(v)
        )
        for k, v in fields.items()
    }
    try:
        sealed = Sealed(
            record_key=text["record_key"],
            kind=text["kind"],
            message_id=text["message_id"],
            conversation_id=text["conversation_id"],
            sender_ref=text["sender_ref"],
            categories=text["categories"],
            at=float(text["at"]),
            key_id=text["key_id"],
            nonce=base64.b64decode(text["nonce"], validate=True),
            ciphertext=base64.b64decode(text["ciphertext"], validate=True),
        )
    except (KeyError, binascii.Error) as error:
        raise ValueError(
            f"malformed audit stream entry ({type(error).__name__}: {error})"
        ) from None
    if sealed.kind not in KINDS or not sealed.record_key:
        raise ValueError(f"malformed audit stream entry (kind {sealed.kind!r})")
    return sealed


class RedisArchiveSink:
    """A replica's writer: seal locally, XADD to the shared stream; the archiver chains it.

    Sealing (a few microseconds of AES-GCM per record) runs inline; the XADDs of one call go
    in one pipelined round trip. A record is "accepted" once Redis acknowledges the XADD: run
    that Redis with AOF (``appendonly yes``) so an accepted record survives a Redis restart
    until the archiver has committed it (docs/archive.md).
    """

    def __init__(self, redis: Redis, ring: KeyRing, stream: str = STREAM) -> None:
        """``redis`` is a ``redis.asyncio.Redis`` (decoded responses or not)."""
        self._redis = redis
        self._ring = ring
        self.stream = stream

    async def record(self, entries: Sequence[Entry]) -> list[str]:
        """Append to the stream; the stream ids. Raises if Redis did not take them all."""
        if not entries:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for entry in entries:
            pipe.xadd(self.stream, sealed_to_fields(seal(entry, self._ring)))  # type: ignore[arg-type]
        ids = await pipe.execute(raise_on_error=True)
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]


class Archiver:
    """The one consumer group that turns the stream into the hash chain, at least once.

    A record is XACKed (and deleted from the stream, which would otherwise grow without end)
    only after its transaction commits. A crash before that leaves it pending, and the next
    archiver claims it (XAUTOCLAIM). Writing it twice is harmless: ``record_key`` is unique.
    Several archivers may share the group; the SQLite file lock serialises their commits.

    Before chaining, each record is test-decrypted with the archive's key ring, so the
    archive never accepts a record the firm cannot read. One that fails (a replica with a key
    the archiver lacks: rotate the archiver's key file first) stays pending and is retried.
    """

    def __init__(
        self,
        redis: Redis,
        archive: Archive | AsyncArchive,
        *,
        consumer: str = "archiver-1",
        stream: str = STREAM,
        group: str = GROUP,
    ) -> None:
        """Bind to ``stream``/``group`` (created if missing) and ``archive``.

        Given an :class:`Archive`, writes go through a dedicated writer thread
        (:class:`AsyncArchive`); :meth:`stop` ends that thread.
        """
        self._redis = redis
        self._owns_writer = isinstance(archive, Archive)
        self.writer = AsyncArchive(archive) if isinstance(archive, Archive) else archive
        self.archive = self.writer.archive
        self.consumer = consumer
        self.stream = stream
        self.group = group
        self.rejected_stream = stream + REJECTED_SUFFIX
        self._group_ready = False
        self._reported: set[str] = set()  # stream ids already logged as unreadable

    async def ensure_group(self) -> None:
        """Create the consumer group (and stream) if they do not exist yet."""
        if self._group_ready:
            return
        try:
            await self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._group_ready = True

    async def run_once(
        self, *, block_ms: int = 200, count: int = MAX_BATCH, claim_idle_ms: int = 30_000
    ) -> int:
        """Claim idle pending records, read new ones, chain and acknowledge them.

        Returns the number of records committed (including duplicates absorbed).

        Raises:
            ArchiveError: the archive could not be written; nothing was acknowledged, so the
                records stay pending and are retried.
        """
        await self.ensure_group()
        entries = await self._claim(count, claim_idle_ms)
        entries += await self._read_new(count, block_ms)
        if not entries:
            return 0
        good, rejected = self._sort(entries)
        if good:
            await self.writer.record_sealed([sealed for _, sealed in good])
        await self._acknowledge([stream_id for stream_id, _ in good], rejected)
        return len(good)

    async def _claim(self, count: int, claim_idle_ms: int) -> list[tuple[Any, Any]]:
        """Entries a crashed archiver left pending for ``claim_idle_ms``: ours now."""
        claimed = await self._redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=claim_idle_ms,
            start_id="0-0",
            count=count,
        )
        return [e for e in claimed[1] if e and e[1] is not None]  # deleted since: no fields

    async def _read_new(self, count: int, block_ms: int) -> list[tuple[Any, Any]]:
        """Entries never delivered to this group before."""
        response: Any = await self._redis.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
        )
        entries: list[tuple[Any, Any]] = []
        # RESP2 answers [[stream, entries]], RESP3 {stream: [entries]}.
        if isinstance(response, dict):
            for wrapped in response.values():
                for batch in wrapped:
                    entries.extend(batch)
        else:
            for _stream, batch in response or []:
                entries.extend(batch)
        return entries

    def _sort(self, entries: list[tuple[Any, Any]]) -> tuple[list[_Good], list[_Rejected]]:
        """Readable records to chain, and malformed entries to move aside.

        A record the archive's key ring cannot decrypt is in neither: it stays pending (a
        replica rotated its key before the archiver did) and is logged once.
        """
        good: list[_Good] = []
        rejected: list[_Rejected] = []
        for raw_id, fields in entries:
            stream_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            try:
                sealed = fields_to_sealed(fields)
            except ValueError as error:
                rejected.append((stream_id, fields, str(error)))
                continue
            if self._readable(stream_id, sealed):
                good.append((stream_id, sealed))
        return good, rejected

    def _readable(self, stream_id: str, sealed: Sealed) -> bool:
        """Test-decrypt: the archive never accepts a record the firm cannot read."""
        try:
            unseal(sealed, self.archive.ring)
        except ArchiveKeyError as error:
            if stream_id not in self._reported:
                self._reported.add(stream_id)
                log.error(
                    "audit record not archived yet: %s (left pending, retried later)",
                    error,
                    extra={"stream_id": stream_id},
                )
            return False
        return True

    async def _acknowledge(self, committed: list[str], rejected: list[_Rejected]) -> None:
        """Move rejected entries aside, then XACK and XDEL them and the committed, atomically."""
        done = committed + [stream_id for stream_id, _, _ in rejected]
        if not done:
            return
        pipe = self._redis.pipeline(transaction=True)
        for stream_id, fields, reason in rejected:
            log.error(
                "malformed audit stream entry moved aside: %s",
                reason,
                extra={"stream_id": stream_id, "stream": self.rejected_stream},
            )
            pipe.xadd(
                self.rejected_stream,
                {**dict(fields), "rejected_id": stream_id, "reason": reason},
            )
        pipe.xack(self.stream, self.group, *done)
        pipe.xdel(self.stream, *done)
        await pipe.execute()

    async def stop(self) -> None:
        """End the writer thread this archiver started (the archive itself stays open)."""
        if self._owns_writer:
            await asyncio.to_thread(self.writer.stop)
