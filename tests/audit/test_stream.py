"""Replicas -> Redis Stream -> one archiver group -> one verifiable archive (real Redis)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot.audit import Archive, Archiver, RedisArchiveSink, message_entry
from bot.audit.keys import KeyRing
from bot.audit.records import sender_reference
from bot.audit.store import Query
from tests.audit.helpers import entries, message, outcome


@pytest.fixture
async def client() -> AsyncIterator[aioredis.Redis]:
    redis = aioredis.Redis(host="127.0.0.1", port=6379, db=15, decode_responses=True)
    yield redis
    await redis.aclose()


@pytest.fixture
async def stream(client: aioredis.Redis) -> AsyncIterator[str]:
    name = f"test:audit:{uuid.uuid4().hex}"
    yield name
    await client.delete(name, name + ":rejected")


@pytest.fixture
def archive(tmp_path: Path, ring: KeyRing) -> Archive:
    """The default checkpoint cadence, as the archiver runs it."""
    return Archive(tmp_path / "a.sqlite3", ring)


async def test_two_replicas_make_one_verifiable_archive_despite_redelivery_and_a_crash(
    client: aioredis.Redis, stream: str, archive: Archive, ring: KeyRing
) -> None:
    replica_a = RedisArchiveSink(client, ring, stream)
    replica_b = RedisArchiveSink(client, ring, stream)
    await replica_a.record(entries(2, sender="alice"))
    await replica_b.record(entries(2, start=2, sender="bob"))
    await replica_b.record(entries(1, start=2, sender="bob"))  # a retried XADD: a duplicate
    crashed = Archiver(client, archive, consumer="crashed", stream=stream)
    await crashed.ensure_group()
    # The first archiver reads but dies before committing: the entries stay pending ...
    await client.xreadgroup(crashed.group, "crashed", {stream: ">"}, count=10)
    survivor = Archiver(client, archive, consumer="survivor", stream=stream)
    # ... and the next archiver claims them.
    assert await survivor.run_once(block_ms=10, claim_idle_ms=0) == 5
    await survivor.stop()
    await crashed.stop()
    assert archive.count() == 4
    assert archive.verify().ok
    alice = Query(sender_ref=sender_reference("alice", ring))
    assert [archive.decrypt(s)["sender_id"] for s in archive.select(alice)] == ["alice"] * 2
    # Acknowledged and deleted: nothing pending, and the stream does not grow without end.
    assert (await client.xpending(stream, survivor.group))["pending"] == 0
    assert await client.xlen(stream) == 0


async def test_the_stream_carries_no_plaintext(
    client: aioredis.Redis, stream: str, ring: KeyRing
) -> None:
    sink = RedisArchiveSink(client, ring, stream)
    await sink.record(
        [
            message_entry(
                message(1, text="HKID A123456(3)", sender="staff-77"),
                *outcome(),
                screened_at=1.0,
                latency_ms=1.0,
            )
        ]
    )
    entries_on_stream: Any = await client.xrange(stream)
    ((_id, fields),) = entries_on_stream
    flat = " ".join(f"{k}={v}" for k, v in fields.items())
    assert "A123456" not in flat
    assert "staff-77" not in flat


async def test_a_malformed_entry_is_moved_aside_and_the_rest_archived(
    client: aioredis.Redis, stream: str, archive: Archive, ring: KeyRing
) -> None:
    sink = RedisArchiveSink(client, ring, stream)
    await sink.record(entries(1))
    await client.xadd(stream, {"record_key": "x", "kind": "message"})  # fields missing
    await sink.record(entries(1, start=1))
    archiver = Archiver(client, archive, stream=stream)
    assert await archiver.run_once(block_ms=10) == 2
    await archiver.stop()
    assert archive.count() == 2
    rejected: Any = await client.xrange(stream + ":rejected")
    ((_id, moved),) = rejected
    assert moved["record_key"] == "x"
    assert "malformed" in moved["reason"]
    assert (await client.xpending(stream, archiver.group))["pending"] == 0


async def test_records_under_a_key_the_archiver_lacks_wait_until_it_has_it(
    client: aioredis.Redis, stream: str, tmp_path: Path, ring: KeyRing
) -> None:
    rotated = ring.rotate("k2")  # a replica rotated before the archiver did
    await RedisArchiveSink(client, rotated, stream).record(entries(2))
    await RedisArchiveSink(client, ring, stream).record(entries(1, start=2))
    old = Archive(tmp_path / "a.sqlite3", ring)
    archiver = Archiver(client, old, stream=stream)
    assert await archiver.run_once(block_ms=10) == 1
    await archiver.stop()
    assert old.count() == 1
    assert (await client.xpending(stream, archiver.group))["pending"] == 2  # kept, not lost
    old.close()
    updated = Archive(tmp_path / "a.sqlite3", rotated)
    archiver = Archiver(client, updated, stream=stream, consumer="archiver-2")
    assert await archiver.run_once(block_ms=10, claim_idle_ms=0) == 2
    await archiver.stop()
    assert [s.sealed.key_id for s in updated.select()] == ["k1", "k2", "k2"]
    assert updated.verify().ok
    assert all(updated.decrypt(s)["text"] == "hello" for s in updated.select())
