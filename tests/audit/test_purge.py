"""Retention purge: only the expired prefix goes, behind a signed anchor, and it is recorded."""

from __future__ import annotations

import time

import pytest

from bot.audit import Archive, ArchiveError
from bot.audit.store import retention_cutoff
from tests.audit.helpers import YEAR, entries, raw, reopen


def test_purge_removes_only_the_expired_prefix_and_the_rest_verifies(archive: Archive) -> None:
    now = time.time()
    old, young = now - 8 * YEAR, now - YEAR
    archive.append(entries(6, at=old))
    archive.append(entries(2, start=6, at=young))
    archive.append(entries(1, start=8, at=old))  # a clock stepped back: kept, with all after it
    archive.append(entries(2, start=9, at=young))
    done = archive.purge(retention_cutoff(7, now), operator="compliance-ops", reason="annual")
    assert (done.removed, done.first_kept) == (6, 7)
    kept = list(archive.select())
    assert [s.seq for s in kept] == [7, 8, 9, 10, 11, 12]
    assert archive.decrypt(kept[2])["text"] == "hello"
    note = archive.decrypt(kept[-1])
    assert kept[-1].sealed.kind == "purge"
    assert (note["removed"], note["operator"], note["last_removed_seq"]) == (
        6,
        "compliance-ops",
        6,
    )
    assert archive.verify().ok
    archive.append(entries(2, start=20))  # appending continues the chain after the anchor
    result = reopen(archive).verify()
    assert (result.ok, result.first_seq, result.checked) == (True, 7, 8)


def test_purge_dry_run_changes_nothing(archive: Archive) -> None:
    archive.append(entries(4, at=time.time() - 8 * YEAR))
    plan = archive.purge(retention_cutoff(7), dry_run=True)
    assert (plan.removed, plan.record_seq) == (4, None)
    assert archive.count() == 4


def test_purging_every_record_leaves_a_chain_that_continues(archive: Archive) -> None:
    archive.append(entries(4, at=time.time() - 8 * YEAR))
    assert archive.purge(retention_cutoff(7)).removed == 4
    archive.append(entries(1, start=10))
    result = archive.verify()
    assert (result.ok, result.first_seq, result.last_seq) == (True, 5, 6)


def test_purge_refuses_when_the_archive_does_not_verify(archive: Archive) -> None:
    archive.append(entries(4, at=time.time() - 8 * YEAR))
    raw(archive).execute("UPDATE records SET message_id = 'x' WHERE seq = 2")
    with pytest.raises(ArchiveError, match="refusing to purge"):
        archive.purge(retention_cutoff(7))
    assert archive.count() == 4  # the evidence of tampering is kept


def test_removing_the_purge_anchor_is_detected(archive: Archive) -> None:
    archive.append(entries(3, at=time.time() - 8 * YEAR))
    archive.append(entries(3, start=3))
    archive.purge(retention_cutoff(7))
    raw(archive).execute("DELETE FROM anchor")
    result = archive.verify()
    assert result.broken is not None
    assert (result.broken.seq, "missing" in result.broken.reason) == (1, True)


def test_moving_the_purge_anchor_to_hide_a_removal_is_reported(archive: Archive) -> None:
    archive.append(entries(3, at=time.time() - 8 * YEAR))
    archive.append(entries(3, start=3))
    archive.purge(retention_cutoff(7))
    db = raw(archive)
    # An insider removes record 4 (not expired) and moves the anchor past it.
    link = db.execute("SELECT hash FROM records WHERE seq = 4").fetchone()[0]
    db.execute("DELETE FROM records WHERE seq = 4")
    db.execute("UPDATE anchor SET seq = 5, prev_hash = ?", (link,))
    result = archive.verify()
    assert result.broken is not None
    assert "anchor signature is invalid" in result.broken.reason
