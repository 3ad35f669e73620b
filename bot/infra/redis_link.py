"""The Redis connection: a fail-fast client, what an outage looks like, and the up/down monitor."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import redis.exceptions
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.infra.supervisor import Supervisor

log = logging.getLogger(__name__)

# What "Redis is unavailable" looks like; anything else from Redis is a bug, not an outage.
# (BusyLoadingError, raised while a restarted Redis reloads its AOF, is a ConnectionError.)
REDIS_DOWN: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OSError,
    TimeoutError,
)


def connect_redis(url: str) -> Redis:
    """A Redis client that fails fast.

    redis-py 8 retries 10 times with backoff by default, which would stall intake for seconds
    on every call while Redis is down; the failover classes here handle outages instead. One
    immediate retry remains, so a pooled connection left stale by a Redis restart reconnects
    instead of looking like a new outage (a duplicated XADD is absorbed by dedupe).
    """
    # A bounded pool that makes callers wait for a free connection: with a thousand messages
    # in flight, an unbounded burst of connections ends in MaxConnectionsError, which would
    # look exactly like an outage.
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=64,
        timeout=5.0,
        decode_responses=True,
        socket_timeout=5.0,  # above the 0.5 s XREADGROUP BLOCK
        socket_connect_timeout=1.0,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=0,
    )
    return Redis.from_pool(pool)


class RedisLink:
    """Whether Redis answers.

    A failed call marks it down; a monitor pings until it is back, then runs the recovery
    callbacks (recreate the consumer group, write back local marks).
    """

    def __init__(
        self,
        client: Redis,
        supervisor: Supervisor,
        *,
        probe_seconds: float = 0.5,
    ) -> None:
        """Starts up; ``on_recover`` callbacks run in order each time Redis comes back."""
        self.client = client
        self.supervisor = supervisor
        self.metrics = supervisor.metrics
        self.health = supervisor.health
        self.probe_seconds = probe_seconds
        self.up = True
        self.on_recover: list[Callable[[], Awaitable[None]]] = []
        self._monitor: asyncio.Task[None] | None = None

    def failed(self, error: BaseException) -> None:
        """Note an outage (idempotent) and start probing for recovery."""
        if not self.up:
            return
        self.up = False
        self.metrics.degraded.set(1)
        self.health.redis_up = False
        self.supervisor.report("redis", error)
        log.error("redis unavailable; degrading to local spill queue and in-process dedupe")
        if self._monitor is None or self._monitor.done():
            self._monitor = self.supervisor.spawn(self._probe(), "redis-probe")

    async def _probe(self) -> None:
        while True:
            await asyncio.sleep(self.probe_seconds)
            try:
                # Every pooled connection died with the server: drop them all, not one by one.
                await self.client.connection_pool.disconnect()
                await self.client.ping()
                for callback in self.on_recover:
                    await callback()
            except REDIS_DOWN:
                continue
            except Exception as error:  # noqa: BLE001  (funnelled; probing goes on)
                self.supervisor.report("redis-recovery", error)
                continue
            self.up = True
            self.metrics.degraded.set(0)
            self.health.redis_up = True
            log.warning("redis is back; replaying local state", extra={"stage": "redis"})
            return

    async def close(self) -> None:
        """Stop probing."""
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
