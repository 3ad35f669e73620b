"""Signed checkpoints: made on cadence and on close, forged ones reported, witness lines."""

from __future__ import annotations

import json
from pathlib import Path

from bot.audit import Archive, Checkpoint
from bot.audit.keys import KeyRing
from tests.audit.helpers import entries, raw


def test_a_forged_checkpoint_is_reported(archive: Archive) -> None:
    archive.append(entries(5))
    raw(archive).execute("INSERT INTO checkpoints VALUES (99, 'ab', 1.0, 'not a signature')")
    result = archive.verify()
    assert result.broken is not None
    assert result.broken.seq == 99
    assert "forged" in result.broken.reason


def test_close_signs_the_tail_so_a_later_truncation_shows(tmp_path: Path, ring: KeyRing) -> None:
    archive = Archive(tmp_path / "a.sqlite3", ring, checkpoint_every=1000, checkpoint_seconds=1e12)
    archive.append(entries(7))
    assert archive.verify().last_checkpoint is None
    archive.close()
    raw(archive).execute("DELETE FROM records WHERE seq = 7")
    result = Archive(archive.path, ring, read_only=True).verify()
    assert result.broken is not None
    assert "truncated" in result.broken.reason


def test_a_checkpoint_is_signed_every_n_records_and_each_matches_the_chain(
    archive: Archive,
) -> None:
    archive.append(entries(25))  # one transaction: one checkpoint at its tail
    archive.append(entries(5, start=25))  # 5 since then: below checkpoint_every=10
    archive.append(entries(5, start=30))  # 10 since then: signed
    rows = raw(archive).execute("SELECT seq, hash FROM checkpoints ORDER BY seq").fetchall()
    hashes = dict(raw(archive).execute("SELECT seq, hash FROM records").fetchall())
    assert [seq for seq, _ in rows] == [25, 35]
    assert all(hashes[seq] == digest for seq, digest in rows)


def test_head_signs_the_tail_once_and_its_witness_line_round_trips(archive: Archive) -> None:
    assert archive.head() is None  # an empty archive: nothing to sign
    archive.append(entries(3))
    head = archive.head()
    assert head is not None
    assert (head.seq, head.archive_id) == (3, archive.archive_id)
    assert archive.head() == head  # already covered: not signed again
    line = json.loads(json.dumps(head.to_json()))
    assert line["at_utc"].endswith("+00:00")
    assert Checkpoint.from_json(line) == head
    assert archive.verify([Checkpoint.from_json(line)]).ok
