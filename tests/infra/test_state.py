"""Dedupe and strikes: in-process, in the real Redis, and the failover between them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from bot.infra.redis_link import RedisLink, connect_redis
from bot.infra.state import Claim, FailoverState, MemoryState, RedisState
from tests.support.bot import REDIS_URL, eventually, free_port
from tests.support.fakes import new_supervisor


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def client() -> AsyncIterator[Redis]:
    redis = connect_redis(REDIS_URL)
    yield redis
    await redis.aclose()


async def test_memory_state_claims_once_and_remembers_done_ids() -> None:
    clock = Clock()
    state = MemoryState(lease_seconds=10, done_ttl_seconds=100, clock=clock)
    assert await state.claim("m1") is Claim.NEW
    assert await state.claim("m1") is Claim.BUSY  # leased by the first worker
    await state.mark_done("m1")
    assert await state.claim("m1") is Claim.DONE
    clock.now += 101
    assert await state.claim("m1") is Claim.NEW  # forgotten after the TTL


async def test_memory_state_lease_expires_when_the_worker_dies() -> None:
    clock = Clock()
    state = MemoryState(lease_seconds=10, done_ttl_seconds=100, clock=clock)
    assert await state.claim("m1") is Claim.NEW
    clock.now += 11
    assert await state.claim("m1") is Claim.NEW
    await state.release("m1")
    assert await state.claim("m1") is Claim.NEW


async def test_memory_strikes_count_within_the_window_and_once_per_message() -> None:
    clock = Clock()
    state = MemoryState(lease_seconds=10, done_ttl_seconds=100, clock=clock)
    assert await state.add_strike("alice", "m1", 60) == 1
    assert await state.add_strike("alice", "m1", 60) == 1  # a replay counts once
    assert await state.add_strike("alice", "m2", 60) == 2
    assert await state.add_strike("bob", "m3", 60) == 1
    clock.now += 61
    assert await state.add_strike("alice", "m4", 60) == 1


async def test_redis_state_dedupes_across_replicas(client: Redis, redis_prefix: str) -> None:
    a = RedisState(
        client, prefix=redis_prefix, replica_id="a", lease_seconds=30, done_ttl_seconds=60
    )
    b = RedisState(
        client, prefix=redis_prefix, replica_id="b", lease_seconds=30, done_ttl_seconds=60
    )
    results = await asyncio.gather(*(s.claim("m1") for s in (a, b, a, b)))
    assert results.count(Claim.NEW) == 1
    winner, loser = (a, b) if results.index(Claim.NEW) % 2 == 0 else (b, a)
    await loser.release("m1")  # not the loser's lease: nothing happens
    assert await loser.claim("m1") is Claim.BUSY
    await winner.mark_done("m1")
    assert await loser.claim("m1") is Claim.DONE
    assert 0 < await client.ttl(f"{redis_prefix}:seen:m1") <= 60


async def test_redis_release_lets_another_replica_retry(client: Redis, redis_prefix: str) -> None:
    a = RedisState(
        client, prefix=redis_prefix, replica_id="a", lease_seconds=30, done_ttl_seconds=60
    )
    b = RedisState(
        client, prefix=redis_prefix, replica_id="b", lease_seconds=30, done_ttl_seconds=60
    )
    assert await a.claim("m1") is Claim.NEW
    await a.release("m1")
    assert await b.claim("m1") is Claim.NEW


async def test_redis_strikes_are_shared_and_windowed(client: Redis, redis_prefix: str) -> None:
    a = RedisState(
        client, prefix=redis_prefix, replica_id="a", lease_seconds=30, done_ttl_seconds=60
    )
    b = RedisState(
        client, prefix=redis_prefix, replica_id="b", lease_seconds=30, done_ttl_seconds=60
    )
    assert await a.add_strike("alice", "m1", 3600) == 1
    assert await b.add_strike("alice", "m2", 3600) == 2  # counted across replicas
    assert await b.add_strike("alice", "m2", 3600) == 2  # same message: once
    assert await a.add_strike("alice", "old", 3600, at=0.0) == 2  # outside the window
    assert 0 < await client.ttl(f"{redis_prefix}:strikes:alice") <= 3660


async def test_failover_state_uses_memory_while_redis_is_down_and_writes_back(
    redis_prefix: str,
) -> None:
    port = free_port()
    dead = connect_redis(f"redis://127.0.0.1:{port}/0")
    live = connect_redis(REDIS_URL)
    supervisor = new_supervisor()
    health = supervisor.health
    link = RedisLink(dead, supervisor, probe_seconds=0.05)
    primary = RedisState(
        dead, prefix=redis_prefix, replica_id="a", lease_seconds=30, done_ttl_seconds=60
    )
    state = FailoverState(primary, MemoryState(lease_seconds=30, done_ttl_seconds=60), link)
    try:
        assert await state.claim("m1") is Claim.NEW  # Redis refused: in-process dedupe
        assert not link.up
        assert health.redis_up is False
        await state.mark_done("m1")
        assert await state.claim("m1") is Claim.DONE
        assert await state.add_strike("alice", "m1", 60) == 1

        # Redis "comes back": point the primary at the live server and let the probe see it.
        primary.client = live
        link.client = live
        primary._claim = live.register_script(primary._claim.script)
        assert await eventually(lambda: link.up, 5)
        assert await live.get(f"{redis_prefix}:seen:m1") == "done"
        assert await live.zcard(f"{redis_prefix}:strikes:alice") == 1
    finally:
        await link.close()
        await dead.aclose()
        await live.aclose()
