"""Shared state: message-id dedupe and repeat-offender strikes, in Redis or in-process."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from bot.infra.redis_link import REDIS_DOWN, RedisLink

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

DONE = "done"


class Claim(StrEnum):
    """The answer to "may I act on this message id?"."""

    NEW = "new"  # first time: the caller holds a lease and must mark_done or release
    DONE = "done"  # already acted on (redelivery, another replica, a replay)
    BUSY = "busy"  # another worker holds a live lease; try again after it expires


class State(Protocol):
    """Dedupe and strikes; shared across replicas when backed by Redis."""

    async def claim(self, message_id: str) -> Claim:
        """Take a lease on ``message_id`` unless it is done or leased elsewhere."""
        ...

    async def release(self, message_id: str) -> None:
        """Drop our lease without marking done (processing failed; retry later)."""
        ...

    async def mark_done(self, message_id: str) -> None:
        """Record that the message has been acted on; later claims answer DONE."""
        ...

    async def add_strike(self, sender_id: str, message_id: str, window_seconds: int) -> int:
        """Count a flagged message against ``sender_id``; return the count inside the window."""
        ...


class MemoryState:
    """In-process state: embedded mode, and the fallback while Redis is away."""

    def __init__(
        self,
        *,
        lease_seconds: float,
        done_ttl_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Leases expire after ``lease_seconds``; done marks after ``done_ttl_seconds``."""
        self.lease_seconds = lease_seconds
        self.done_ttl_seconds = done_ttl_seconds
        self.clock = clock
        self._marks: dict[str, tuple[str, float]] = {}
        self._strikes: dict[str, dict[str, float]] = {}
        self._ops = 0

    async def claim(self, message_id: str) -> Claim:
        """See :meth:`State.claim`."""
        now = self.clock()
        self._maybe_prune(now)
        mark = self._marks.get(message_id)
        if mark is not None and mark[1] > now:
            return Claim.DONE if mark[0] == DONE else Claim.BUSY
        self._marks[message_id] = ("busy", now + self.lease_seconds)
        return Claim.NEW

    async def release(self, message_id: str) -> None:
        """See :meth:`State.release`."""
        mark = self._marks.get(message_id)
        if mark is not None and mark[0] != DONE:
            del self._marks[message_id]

    async def mark_done(self, message_id: str) -> None:
        """See :meth:`State.mark_done`."""
        self._marks[message_id] = (DONE, self.clock() + self.done_ttl_seconds)

    async def add_strike(self, sender_id: str, message_id: str, window_seconds: int) -> int:
        """See :meth:`State.add_strike`."""
        now = self.clock()
        strikes = self._strikes.setdefault(sender_id, {})
        strikes.setdefault(message_id, now)
        for key in [k for k, at in strikes.items() if at <= now - window_seconds]:
            del strikes[key]
        return len(strikes)

    def _maybe_prune(self, now: float) -> None:
        self._ops += 1
        if self._ops % 1024:
            return
        for key in [k for k, (_, expires) in self._marks.items() if expires <= now]:
            del self._marks[key]


# GET-or-SET in one round trip: returns "new" after taking the lease, else the current mark.
_CLAIM = """
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 'new'
"""
# Delete our own lease only (never a done mark, never another replica's lease).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisState:
    """Dedupe (``SET`` with expiry, via a script) and strikes (a sorted set per sender)."""

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str,
        replica_id: str,
        lease_seconds: float,
        done_ttl_seconds: int,
    ) -> None:
        """Keys live under ``{prefix}:seen:`` and ``{prefix}:strikes:``."""
        self.client = client
        self.prefix = prefix
        self.lease_value = f"busy:{replica_id}"
        self.lease_seconds = max(1, int(lease_seconds))
        self.done_ttl_seconds = done_ttl_seconds
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)

    def _seen(self, message_id: str) -> str:
        return f"{self.prefix}:seen:{message_id}"

    def _strikes(self, sender_id: str) -> str:
        return f"{self.prefix}:strikes:{sender_id}"

    async def claim(self, message_id: str) -> Claim:
        """See :meth:`State.claim`."""
        result = await self._claim(
            keys=[self._seen(message_id)], args=[self.lease_value, self.lease_seconds]
        )
        if result == "new":
            return Claim.NEW
        return Claim.DONE if result == DONE else Claim.BUSY

    async def release(self, message_id: str) -> None:
        """See :meth:`State.release`."""
        await self._release(keys=[self._seen(message_id)], args=[self.lease_value])

    async def mark_done(self, message_id: str) -> None:
        """See :meth:`State.mark_done`."""
        await self.client.set(self._seen(message_id), DONE, ex=self.done_ttl_seconds)

    async def add_strike(
        self, sender_id: str, message_id: str, window_seconds: int, at: float | None = None
    ) -> int:
        """See :meth:`State.add_strike`; the message id is the member, so a replay counts once."""
        now = time.time() if at is None else at
        key = self._strikes(sender_id)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {message_id: now}, nx=True)
            pipe.zremrangebyscore(key, "-inf", time.time() - window_seconds)
            pipe.zcard(key)
            pipe.expire(key, window_seconds + 60)
            results = await pipe.execute()
        return int(results[2])


class FailoverState:
    """Redis state while Redis answers, in-process state while it does not.

    Dedupe during an outage is per replica only; marks and strikes taken locally are
    written back to Redis when it returns, so a later redelivery is still recognised.
    """

    def __init__(self, primary: RedisState, fallback: MemoryState, link: RedisLink) -> None:
        """Register the write-back as a recovery step of ``link``."""
        self.primary = primary
        self.fallback = fallback
        self.link = link
        self._done_offline: set[str] = set()
        self._strikes_offline: list[tuple[str, str, int, float]] = []
        link.on_recover.append(self.sync)

    async def claim(self, message_id: str) -> Claim:
        """See :meth:`State.claim`."""
        if self.link.up:
            try:
                return await self.primary.claim(message_id)
            except REDIS_DOWN as error:
                self.link.failed(error)
        return await self.fallback.claim(message_id)

    async def release(self, message_id: str) -> None:
        """See :meth:`State.release`."""
        await self.fallback.release(message_id)
        if self.link.up:
            try:
                await self.primary.release(message_id)
            except REDIS_DOWN as error:
                self.link.failed(error)

    async def mark_done(self, message_id: str) -> None:
        """See :meth:`State.mark_done`."""
        await self.fallback.mark_done(message_id)
        if self.link.up:
            try:
                await self.primary.mark_done(message_id)
            except REDIS_DOWN as error:
                self.link.failed(error)
            else:
                return
        self._done_offline.add(message_id)

    async def add_strike(self, sender_id: str, message_id: str, window_seconds: int) -> int:
        """See :meth:`State.add_strike`; offline counts are this replica's only."""
        if self.link.up:
            try:
                return await self.primary.add_strike(sender_id, message_id, window_seconds)
            except REDIS_DOWN as error:
                self.link.failed(error)
        self._strikes_offline.append((sender_id, message_id, window_seconds, time.time()))
        return await self.fallback.add_strike(sender_id, message_id, window_seconds)

    async def sync(self) -> None:
        """Write marks and strikes taken during the outage back to Redis."""
        done, strikes = sorted(self._done_offline), list(self._strikes_offline)
        for message_id in done:
            await self.primary.mark_done(message_id)
        for sender_id, message_id, window, at in strikes:
            await self.primary.add_strike(sender_id, message_id, window, at=at)
        self._done_offline.difference_update(done)
        del self._strikes_offline[: len(strikes)]
        if done or strikes:
            log.warning(
                "replayed offline dedupe marks and strikes into redis",
                extra={"count": len(done) + len(strikes), "stage": "redis"},
            )
