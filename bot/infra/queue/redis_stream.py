"""The Redis Stream queue replicas share: one consumer group; a dead replica's work taken over."""

from __future__ import annotations

import logging
import time
from typing import Any

import redis.exceptions
from redis.asyncio import Redis

from bot.infra.queue import Envelope, QueueItem

log = logging.getLogger(__name__)


class RedisQueue:
    """A Redis Stream read through a consumer group.

    Each replica is one consumer. An entry a replica fetched but never acknowledged (it
    crashed) stays in the group's pending list; after ``claim_idle`` seconds any replica takes
    it over with XAUTOCLAIM. At start a replica first re-reads its own pending entries, which
    matters when its name is stable (``bot.replica_id``).
    """

    name = "redis"

    def __init__(
        self, client: Redis, *, prefix: str, consumer: str, claim_idle_seconds: float
    ) -> None:
        """Stream ``{prefix}:queue``, dead letters in ``{prefix}:dead``, group ``workers``."""
        self.client = client
        self.stream = f"{prefix}:queue"
        self.dead = f"{prefix}:dead"
        self.group = "workers"
        self.consumer = consumer
        self.claim_idle_ms = int(claim_idle_seconds * 1000)
        self._own_pending = True
        self._autoclaim_cursor = "0-0"
        self._last_autoclaim = 0.0

    async def ensure_group(self) -> None:
        """Create the stream and group if missing (first start, or Redis lost its data)."""
        try:
            await self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._own_pending = True

    async def put(self, envelope: Envelope) -> str:
        """See :meth:`DurableQueue.put`."""
        await self.client.xadd(self.stream, {"e": envelope.encode()})
        return self.name

    async def fetch(self, limit: int, wait: float) -> list[QueueItem]:
        """See :meth:`DurableQueue.fetch`."""
        try:
            return await self._fetch(limit, wait)
        except redis.exceptions.ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            # Redis restarted without persistence: the stream and group are gone.
            log.error("redis queue group missing; recreating it", extra={"stage": "queue"})
            await self.ensure_group()
            return []

    async def _fetch(self, limit: int, wait: float) -> list[QueueItem]:
        if self._own_pending:
            response = await self.client.xreadgroup(
                self.group, self.consumer, {self.stream: "0"}, count=limit
            )
            entries = self._parse(response)
            if entries:
                return entries
            self._own_pending = False
        now = time.monotonic()
        if now - self._last_autoclaim >= self.claim_idle_ms / 4000:
            self._last_autoclaim = now
            result = await self.client.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                self.claim_idle_ms,
                self._autoclaim_cursor,
                count=limit,
            )
            self._autoclaim_cursor = result[0] if result[0] else "0-0"
            entries = [self._entry(i, f) for i, f in result[1] if f]
            if entries:
                log.warning(
                    "took over entries another consumer left unacknowledged",
                    extra={"count": len(entries), "stage": "queue"},
                )
                return entries
        # BLOCK 0 would mean "forever"; no wait means no BLOCK at all.
        block = int(wait * 1000) or None
        response = await self.client.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=limit, block=block
        )
        return self._parse(response)

    def _parse(self, response: Any) -> list[QueueItem]:
        entries: list[QueueItem] = []
        if not response:
            return entries
        # RESP2 (the client's default): [[stream, [(id, fields), ...]]]
        for _, items in response:
            for entry_id, fields in items:
                if fields:  # an entry deleted while pending comes back without fields
                    entries.append(self._entry(entry_id, fields))
        return entries

    def _entry(self, entry_id: str, fields: dict[str, str]) -> QueueItem:
        return QueueItem(entry_id, Envelope.decode(fields["e"]), self.name)

    async def ack(self, entry: QueueItem) -> None:
        """See :meth:`DurableQueue.ack`; XDEL too, so XLEN is the real backlog."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.group, entry.key)
            pipe.xdel(self.stream, entry.key)
            await pipe.execute()

    async def requeue(self, entry: QueueItem, envelope: Envelope) -> None:
        """See :meth:`DurableQueue.requeue`."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xadd(self.stream, {"e": envelope.encode()})
            pipe.xack(self.stream, self.group, entry.key)
            pipe.xdel(self.stream, entry.key)
            await pipe.execute()

    async def bury(self, entry: QueueItem, reason: str) -> None:
        """See :meth:`DurableQueue.bury`."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dead, {"e": entry.envelope.encode(), "reason": reason})
            pipe.xack(self.stream, self.group, entry.key)
            pipe.xdel(self.stream, entry.key)
            await pipe.execute()

    async def defer(self, entry: QueueItem, delay: float) -> None:
        """See :meth:`DurableQueue.defer`: left pending, XAUTOCLAIM returns it when idle."""
        del entry, delay

    async def depth(self) -> int:
        """See :meth:`DurableQueue.depth`."""
        return int(await self.client.xlen(self.stream))
