"""Redis while it answers, the local SQLite spill while it does not; nothing accepted is lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from bot.infra.metrics import Metrics
from bot.infra.queue import DurableQueue, Envelope, QueueItem
from bot.infra.queue.redis_stream import RedisQueue
from bot.infra.queue.sqlite import SqliteQueue
from bot.infra.redis_link import REDIS_DOWN, RedisLink

log = logging.getLogger(__name__)


class FailoverQueue:
    """Redis while it answers; the local SQLite spill while it does not.

    Nothing accepted is dropped: a put that Redis refuses goes to the spill (logged, counted),
    and spilled entries are handled first, by this replica, as soon as it can. An entry whose
    ack could not reach Redis stays pending there and comes back after the idle time, when
    dedupe recognises it as done.
    """

    def __init__(
        self,
        primary: RedisQueue,
        spill: SqliteQueue,
        link: RedisLink,
        metrics: Metrics,
        *,
        put_timeout: float,
    ) -> None:
        """Register the consumer-group check as a recovery step of ``link``."""
        self.primary = primary
        self.spill = spill
        self.link = link
        self.metrics = metrics
        self.put_timeout = put_timeout
        link.on_recover.append(primary.ensure_group)

    async def put(self, envelope: Envelope) -> str:
        """See :meth:`DurableQueue.put`."""
        if self.link.up:
            try:
                return await asyncio.wait_for(self.primary.put(envelope), self.put_timeout)
            except REDIS_DOWN as error:
                # A timed-out XADD may still have landed: the spilled copy is then a
                # duplicate, which dedupe absorbs. Losing it would be worse.
                self.link.failed(error)
        await self.spill.put(envelope)
        self.metrics.spilled.inc()
        return self.spill.name

    async def fetch(self, limit: int, wait: float) -> list[QueueItem]:
        """See :meth:`DurableQueue.fetch`."""
        local = await self.spill.fetch(limit, 0)
        if local:
            return local
        if self.link.up:
            try:
                return await self.primary.fetch(limit, wait)
            except REDIS_DOWN as error:
                self.link.failed(error)
        # While degraded, wake often enough to notice that Redis is back.
        return await self.spill.fetch(limit, min(wait, 0.5))

    def _queue(self, entry: QueueItem) -> DurableQueue:
        return self.spill if entry.origin == self.spill.name else self.primary

    async def _on(self, entry: QueueItem, call: Callable[[DurableQueue], Any]) -> None:
        queue = self._queue(entry)
        if queue is self.spill:
            await call(queue)
            return
        try:
            await call(queue)
        except REDIS_DOWN as error:
            self.link.failed(error)
            log.warning(
                "could not update a redis queue entry; it will be re-delivered and deduped",
                extra={"message_id": entry.envelope.message.id, "stage": "queue"},
            )

    async def ack(self, entry: QueueItem) -> None:
        """See :meth:`DurableQueue.ack`."""
        await self._on(entry, lambda q: q.ack(entry))

    async def requeue(self, entry: QueueItem, envelope: Envelope) -> None:
        """See :meth:`DurableQueue.requeue`."""
        await self._on(entry, lambda q: q.requeue(entry, envelope))

    async def bury(self, entry: QueueItem, reason: str) -> None:
        """See :meth:`DurableQueue.bury`."""
        await self._on(entry, lambda q: q.bury(entry, reason))

    async def defer(self, entry: QueueItem, delay: float) -> None:
        """See :meth:`DurableQueue.defer`."""
        await self._queue(entry).defer(entry, delay)

    async def depth(self) -> int:
        """See :meth:`DurableQueue.depth`; Redis' part only while it answers."""
        total = await self.spill.depth()
        if self.link.up:
            try:
                total += await self.primary.depth()
            except REDIS_DOWN as error:
                self.link.failed(error)
        return total
