"""The durable queue: SQLite (embedded, spill), Redis Streams, and the failover between them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.domain import Message
from bot.infra.queue import Envelope, retried
from bot.infra.queue.failover import FailoverQueue
from bot.infra.queue.redis_stream import RedisQueue
from bot.infra.queue.sqlite import SqliteQueue
from bot.infra.redis_link import RedisLink, connect_redis
from tests.support.bot import REDIS_URL, free_port
from tests.support.fakes import new_supervisor


def envelope(n: int, text: str = "hello") -> Envelope:
    message = Message(
        id=f"m{n}",
        text=text,
        conversation_id="cid1",
        sender_id="s1",
        sender_name="陳大文",
        source="dingtalk",
        sent_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        session_webhook="http://127.0.0.1/robot/sendBySession?session=x",
        sender_staff_id="staff1",
    )
    return Envelope(message, received_at=1_700_000_000.5 + n)


@pytest.fixture
async def client() -> AsyncIterator[Redis]:
    redis = connect_redis(REDIS_URL)
    yield redis
    await redis.aclose()


def test_envelope_round_trips_every_field() -> None:
    original = envelope(1, "客戶身份證 A123456(3)")
    assert Envelope.decode(original.encode()) == original
    assert retried(original).attempts == 1


async def test_sqlite_queue_keeps_accepted_messages_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    queue = await SqliteQueue(path).open()
    await asyncio.gather(*(queue.put(envelope(n)) for n in range(5)))  # one group commit
    fetched = await queue.fetch(10, 0)
    assert [e.envelope.message.id for e in fetched] == [f"m{n}" for n in range(5)]
    await queue.ack(fetched[0])
    assert await queue.depth() == 4
    await queue.close()  # "crash": four fetched entries were never acknowledged

    reopened = await SqliteQueue(path).open()
    try:
        again = await reopened.fetch(10, 0)
        assert [e.envelope.message.id for e in again] == ["m1", "m2", "m3", "m4"]
        assert await reopened.depth() == 4
    finally:
        await reopened.close()


async def test_sqlite_queue_wakes_a_waiting_fetch_on_put(tmp_path: Path) -> None:
    queue = await SqliteQueue(tmp_path / "q.sqlite3").open()
    try:
        waiting = asyncio.ensure_future(queue.fetch(10, 5))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await queue.put(envelope(1))
        entries = await waiting
        assert [e.envelope.message.id for e in entries] == ["m1"]
        assert time.monotonic() - started < 1
    finally:
        await queue.close()


async def test_sqlite_queue_requeue_defer_and_dead_letters(tmp_path: Path) -> None:
    queue = await SqliteQueue(tmp_path / "q.sqlite3").open()
    try:
        await queue.put(envelope(1))
        await queue.put(envelope(2))
        first, second = await queue.fetch(10, 0)
        await queue.requeue(first, retried(first.envelope))
        (again,) = await queue.fetch(10, 0)
        assert again.envelope.attempts == 1
        await queue.defer(second, 0.05)
        assert await queue.fetch(10, 0) == []
        await asyncio.sleep(0.1)
        (later,) = await queue.fetch(10, 0)
        assert later.envelope.message.id == "m2"
        await queue.bury(again, "screen: ValueError")
        assert await queue.dead_letters() == 1
        assert await queue.depth() == 1
    finally:
        await queue.close()


async def test_redis_queue_delivers_each_entry_to_one_consumer(
    client: Redis, redis_prefix: str
) -> None:
    a = RedisQueue(client, prefix=redis_prefix, consumer="a", claim_idle_seconds=60)
    b = RedisQueue(client, prefix=redis_prefix, consumer="b", claim_idle_seconds=60)
    await a.ensure_group()
    for n in range(10):
        await a.put(envelope(n))
    got_a = await a.fetch(6, 0)
    got_b = await b.fetch(6, 0)
    ids = [e.envelope.message.id for e in got_a + got_b]
    assert sorted(ids) == sorted(f"m{n}" for n in range(10))
    assert await a.depth() == 10
    for entry in got_a:
        await a.ack(entry)
    assert await a.depth() == 4


async def test_redis_queue_takes_over_what_a_dead_consumer_left(
    client: Redis, redis_prefix: str
) -> None:
    dead = RedisQueue(client, prefix=redis_prefix, consumer="dead", claim_idle_seconds=0.1)
    await dead.ensure_group()
    await dead.put(envelope(1))
    assert len(await dead.fetch(10, 0)) == 1  # fetched, never acked
    await asyncio.sleep(0.15)
    alive = RedisQueue(client, prefix=redis_prefix, consumer="alive", claim_idle_seconds=0.1)
    alive._own_pending = False
    (entry,) = await alive.fetch(10, 0)
    assert entry.envelope.message.id == "m1"


async def test_redis_queue_rereads_its_own_pending_entries_after_a_restart(
    client: Redis, redis_prefix: str
) -> None:
    before = RedisQueue(client, prefix=redis_prefix, consumer="r1", claim_idle_seconds=60)
    await before.ensure_group()
    await before.put(envelope(1))
    assert len(await before.fetch(10, 0)) == 1
    after = RedisQueue(client, prefix=redis_prefix, consumer="r1", claim_idle_seconds=60)
    (entry,) = await after.fetch(10, 0)  # the same stable name: its pending list first
    assert entry.envelope.message.id == "m1"


async def test_redis_queue_recreates_its_group_when_redis_lost_it(
    client: Redis, redis_prefix: str
) -> None:
    queue = RedisQueue(client, prefix=redis_prefix, consumer="a", claim_idle_seconds=60)
    await queue.ensure_group()
    await client.delete(queue.stream)  # what a restart without persistence looks like
    queue._own_pending = False
    assert await queue.fetch(10, 0) == []
    await queue.put(envelope(1))
    assert len(await queue.fetch(10, 0)) == 1


async def test_failover_queue_spills_to_disk_when_redis_is_down(
    tmp_path: Path, redis_prefix: str
) -> None:
    dead = connect_redis(f"redis://127.0.0.1:{free_port()}/0")
    supervisor = new_supervisor()
    metrics = supervisor.metrics
    link = RedisLink(dead, supervisor, probe_seconds=3600)
    primary = RedisQueue(dead, prefix=redis_prefix, consumer="a", claim_idle_seconds=60)
    spill = await SqliteQueue(tmp_path / "spill.sqlite3", name="spill").open()
    queue = FailoverQueue(primary, spill, link, metrics, put_timeout=1)
    try:
        assert await queue.put(envelope(1)) == "spill"
        assert not link.up
        assert metrics.total("bot_spilled_total") == 1
        (entry,) = await queue.fetch(10, 0.1)
        assert entry.origin == "spill"
        await queue.ack(entry)
        assert await queue.depth() == 0
    finally:
        await link.close()
        await spill.close()
        await dead.aclose()
