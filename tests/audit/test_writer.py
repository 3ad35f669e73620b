"""The async facade: one writer thread, group commit, returns after commit, errors reach callers."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.audit import (
    Archive,
    ArchiveError,
    AsyncArchive,
    Entry,
    SinkAuditTrail,
    action_entry,
    message_entry,
    review_entry,
)
from bot.audit.keys import KeyRing
from bot.audit.records import Sealed
from bot.domain import Action, Category
from tests.audit.helpers import entries, message, outcome


@pytest.fixture
def archive(tmp_path: Path, ring: KeyRing) -> Archive:
    """The default checkpoint cadence, as the bot runs it."""
    return Archive(tmp_path / "a.sqlite3", ring)


class Spy(Archive):
    """Records which thread writes and how many records each transaction held."""

    batches: list[int]
    threads: set[str]

    def append_sealed(self, batch: Sequence[Sealed]) -> list[int]:
        self.batches.append(len(batch))
        self.threads.add(threading.current_thread().name)
        return super().append_sealed(batch)


async def test_concurrent_records_share_transactions_in_one_thread_off_the_loop(
    tmp_path: Path, ring: KeyRing
) -> None:
    spy = Spy(tmp_path / "a.sqlite3", ring)
    spy.batches, spy.threads = [], set()
    writer = AsyncArchive(spy)
    seqs = await asyncio.gather(
        *(
            writer.record(
                [message_entry(message(i), *outcome(), screened_at=time.time(), latency_ms=1.0)]
            )
            for i in range(300)
        )
    )
    assert sorted(seq for (seq,) in seqs) == list(range(1, 301))
    assert spy.threads == {"audit-writer"}  # never the event loop's thread
    assert sum(spy.batches) == 300
    assert len(spy.batches) < 300  # group commit: one fsync covered several records
    await writer.aclose()
    assert Archive(spy.path, ring, read_only=True).verify().checked == 300


async def test_a_record_is_committed_when_record_returns(archive: Archive) -> None:
    writer = AsyncArchive(archive)
    (seq,) = await writer.record(entries(1))
    # Another connection (another process, a crash right now) already sees it.
    other = sqlite3.connect(archive.path)
    assert other.execute("SELECT seq FROM records").fetchall() == [(seq,)]
    other.close()
    await writer.aclose()


async def test_every_waiting_caller_gets_the_error_when_the_disk_is_full(
    archive: Archive,
) -> None:
    writer = AsyncArchive(archive)
    await writer.record(entries(2))
    pages = archive._db.execute("PRAGMA page_count").fetchone()[0]
    archive._db.execute(f"PRAGMA max_page_count = {pages + 1}")
    results = await asyncio.gather(
        *(writer.record(entries(1, start=10 + i, text="y" * 5000)) for i in range(20)),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, ArchiveError)]
    assert failures
    assert all(isinstance(r, ArchiveError | list) for r in results)
    claimed = [seq for r in results if isinstance(r, list) for seq in r]
    assert archive.count() == 2 + len(claimed)  # what was claimed is exactly what is there
    await writer.aclose()


async def test_one_bad_entry_fails_its_own_caller_only(archive: Archive) -> None:
    writer = AsyncArchive(archive)
    bogus = Entry("bogus:1", "gossip", "m1", "", "", (), 1.0, {})
    good, bad = await asyncio.gather(
        writer.record(entries(1)), writer.record([bogus]), return_exceptions=True
    )
    assert good == [1]
    assert isinstance(bad, ValueError)
    await writer.aclose()


async def test_records_after_close_are_refused_not_lost_silently(archive: Archive) -> None:
    writer = AsyncArchive(archive)
    await writer.record(entries(1))
    await writer.aclose()
    with pytest.raises(ArchiveError, match="closed"):
        await writer.record(entries(1, start=5))


async def test_close_finishes_queued_writes_first(archive: Archive) -> None:
    writer = AsyncArchive(archive)
    pending = [asyncio.ensure_future(writer.record(entries(1, start=i))) for i in range(50)]
    await asyncio.sleep(0)  # queued, maybe not yet written
    await writer.aclose()
    done = [await p for p in pending]
    assert sorted(seq for seqs in done for seq in seqs) == list(range(1, 51))


async def test_action_and_review_records_keep_group_and_sender(archive: Archive) -> None:
    writer = AsyncArchive(archive)
    flagged = message(3, group="cidFX", sender="trader7")
    await writer.record(
        [message_entry(flagged, *outcome(Category.OFF_CHANNEL), screened_at=1.0, latency_ms=1.0)]
    )
    retrying = action_entry(flagged, "escalate", "retrying", {"attempt": 2}, key="esc:2")
    await writer.record([retrying])
    await writer.record([retrying])
    review = review_entry(
        flagged.id,
        "officer1",
        "false_positive",
        "agreed with client",
        conversation_id=flagged.conversation_id,
        sender_id=flagged.sender_id,
    )
    await writer.record([review])
    await writer.aclose()
    reader = Archive(archive.path, archive.ring, read_only=True)
    stored = list(reader.select())
    assert [s.sealed.kind for s in stored] == ["message", "action", "review"]  # replay absorbed
    assert {s.sealed.conversation_id for s in stored} == {"cidFX"}
    assert len({s.sealed.sender_ref for s in stored}) == 1
    decided = reader.decrypt(stored[2])
    assert (decided["reviewer"], decided["decision"], decided["sender_id"]) == (
        "officer1",
        "false_positive",
        "trader7",
    )


async def test_the_bots_audit_trail_records_through_the_async_archive(
    archive: Archive,
) -> None:
    # SinkAuditTrail is how the running bot writes here (its contract with this package).
    writer = AsyncArchive(archive)
    adapter = SinkAuditTrail(writer)
    flagged = message(5)
    verdict, decision = outcome(Category.ADVICE)
    await adapter.record_message(
        flagged,
        verdict,
        dataclasses.replace(decision, actions=(Action.WARN,), strikes=2),
        case_id="C-1",
        latency_ms=4.0,
    )
    await adapter.record_action(flagged, Action.WARN, case_id="C-1", outcome="sent", detail="ok")
    await adapter.record_action(flagged, Action.WARN, case_id="C-1", outcome="sent", detail="ok")
    await writer.aclose()
    reader = Archive(archive.path, archive.ring, read_only=True)
    stored = list(reader.select())
    assert [(s.sealed.kind, s.sealed.record_key) for s in stored] == [
        ("message", "message:m5"),
        ("action", "action:m5:decision"),
        ("action", "action:m5:warn:sent"),
    ]
    assert reader.decrypt(stored[1])["detail"]["strikes"] == 2
    assert reader.verify().ok


async def test_no_transaction_holds_more_than_max_batch_records(
    tmp_path: Path, ring: KeyRing
) -> None:
    spy = Spy(tmp_path / "a.sqlite3", ring)
    spy.batches, spy.threads = [], set()
    writer = AsyncArchive(spy, max_batch=10)
    results = await asyncio.gather(*(writer.record(entries(3, start=3 * i)) for i in range(30)))
    assert sorted(seq for seqs in results for seq in seqs) == list(range(1, 91))
    assert sum(spy.batches) == 90
    assert max(spy.batches) <= 10
    assert len(spy.batches) < 30  # still grouped
    await writer.aclose()


async def test_a_cancelled_caller_still_has_its_records_written(archive: Archive) -> None:
    writer = AsyncArchive(archive)
    waiting = asyncio.ensure_future(writer.record(entries(1)))
    await asyncio.sleep(0)  # submitted
    waiting.cancel()
    (seq,) = await writer.record(entries(1, start=1))
    await writer.aclose()
    assert waiting.cancelled()
    assert seq == 2
    assert [s.sealed.record_key for s in archive.select()] == ["message:m0", "message:m1"]


async def test_stop_from_another_thread_finishes_queued_writes_then_refuses(
    archive: Archive,
) -> None:
    writer = AsyncArchive(archive)
    pending = [asyncio.ensure_future(writer.record(entries(1, start=i))) for i in range(20)]
    await asyncio.sleep(0)
    await asyncio.to_thread(writer.stop)
    done = [await p for p in pending]
    assert sorted(seq for seqs in done for seq in seqs) == list(range(1, 21))
    with pytest.raises(ArchiveError, match="the archive is closed"):
        await writer.record(entries(1, start=50))
    await writer.aclose()  # after stop: still closes the archive, once
    await writer.aclose()
    with pytest.raises(ArchiveError, match="closed"):
        archive.append(entries(1, start=60))


async def test_stop_on_the_loop_with_writes_in_flight_refuses_rather_than_deadlock(
    archive: Archive,
) -> None:
    writer = AsyncArchive(archive)
    pending = [asyncio.ensure_future(writer.record(entries(1, start=i))) for i in range(5)]
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="aclose"):
        writer.stop()
    with pytest.raises(ArchiveError, match="the archive is closed"):
        await writer.record(entries(1, start=50))
    await writer.aclose()
    done = [await p for p in pending]
    assert sorted(seq for seqs in done for seq in seqs) == [1, 2, 3, 4, 5]


def test_close_without_a_loop_checkpoints_and_closes(archive: Archive) -> None:
    writer = AsyncArchive(archive)
    writer.close()
    writer.close()
    with pytest.raises(ArchiveError, match="closed"):
        asyncio.run(writer.record(entries(1)))
