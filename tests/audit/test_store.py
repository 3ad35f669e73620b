"""The archive store: encryption at rest, tampering of each kind, keys, rotation, purge, faults."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bot.audit import Archive, ArchiveError, ArchiveKeyError, Checkpoint, Query
from bot.audit.entries import action_entry, message_entry
from bot.audit.keys import KeyRing, generate, write_key_file
from bot.audit.records import ChainHasher, Entry, Stored
from bot.audit.store import retention_cutoff
from bot.domain import Action, Category, Decision, Finding, Message, Severity, Verdict

REPO = Path(__file__).resolve().parent.parent
YEAR = 365.25 * 86400


def message(
    n: int | str, *, group: str = "cidDesk", sender: str = "staff1", text: str = "hello"
) -> Message:
    return Message(
        id=f"m{n}",
        text=text,
        conversation_id=group,
        conversation_title="Equities desk",
        sender_id=sender,
        sender_name="Alice Chan",
        source="dingtalk",
    )


def outcome(category: Category | None = None) -> tuple[Verdict, Decision]:
    """A verdict and the decision on it: one HKID finding in ``category``, or clean."""
    findings: tuple[Finding, ...] = ()
    if category is not None:
        findings = (
            Finding("hkid", category, Severity.HIGH, 5, 15, 0.95, "checksum ok", "HKID", True),
        )
    verdict = Verdict(
        findings,
        (category,) if category else (),
        Severity.HIGH if category else None,
        "rules-v1",
    )
    decision = Decision(
        (Action.LOG, Action.WARN) if category else (Action.LOG,),
        "客戶 HKID A1*****(*)" if category else "hello",
    )
    return verdict, decision


def entries(count: int, *, start: int = 0, at: float | None = None, **kwargs: Any) -> list[Entry]:
    return [
        message_entry(
            message(i, **kwargs),
            *outcome(),
            screened_at=time.time() if at is None else at,
            latency_ms=1.0,
        )
        for i in range(start, start + count)
    ]


def raw(archive: Archive) -> sqlite3.Connection:
    """A plain connection: what an insider with file access but no key can do."""
    return sqlite3.connect(archive.path, isolation_level=None)


def reopen(archive: Archive, ring: KeyRing | None = None, **kwargs: Any) -> Archive:
    archive.close()
    return Archive(archive.path, ring or archive.ring, **kwargs)


@pytest.fixture
def ring() -> KeyRing:
    return generate()


@pytest.fixture
def archive(tmp_path: Path, ring: KeyRing) -> Archive:
    return Archive(tmp_path / "a.sqlite3", ring, checkpoint_every=10)


# -- encryption at rest ---------------------------------------------------------------------
def test_text_and_sender_are_unreadable_in_the_file_but_readable_with_the_key(
    archive: Archive,
) -> None:
    archive.append(
        [
            message_entry(
                message(1, text="客戶 HKID A123456(3)", sender="staff-9931"),
                *outcome(Category.PII),
                screened_at=1_700_000_000.0,
                latency_ms=2.5,
            )
        ]
    )
    archive.close()
    on_disk = b"".join(
        p.read_bytes() for p in archive.path.parent.iterdir() if p.name.startswith("a.sqlite3")
    )
    for secret in ("A123456", "staff-9931", "Alice Chan", "Equities desk", "客戶"):
        assert secret.encode() not in on_disk, secret
    reader = Archive(archive.path, archive.ring, read_only=True)
    (stored,) = list(reader.select())
    payload = reader.decrypt(stored)
    assert payload["text"] == "客戶 HKID A123456(3)"
    assert payload["sender_id"] == "staff-9931"
    assert payload["rule_ids"] == ["hkid"]
    assert payload["findings"][0]["score"] == 0.95
    assert payload["rules_version"] == "rules-v1"
    assert stored.sealed.key_id == "k1"
    assert stored.sealed.categories == "pii"


def test_moving_a_payload_to_another_row_fails_authentication(archive: Archive) -> None:
    archive.append(entries(2))
    db = raw(archive)
    db.execute(
        "UPDATE records SET (nonce, ciphertext) = "
        "(SELECT nonce, ciphertext FROM records WHERE seq = 2) WHERE seq = 1"
    )
    first = next(archive.select())
    with pytest.raises(ArchiveKeyError, match="record 1 failed authentication"):
        archive.decrypt(first)


# -- the chain --------------------------------------------------------------------------------
def test_intact_chain_verifies_with_every_checkpoint_matching(archive: Archive) -> None:
    for _ in range(3):
        archive.append(entries(10, start=archive.count()))
    result = archive.verify()
    assert result.ok
    assert (result.checked, result.first_seq, result.last_seq) == (30, 1, 30)
    assert result.checkpoints == 3
    assert result.last_checkpoint == 30


@pytest.mark.parametrize(
    ("tamper", "first_bad", "reason"),
    [
        ("UPDATE records SET ciphertext = X'00' || ciphertext WHERE seq = 7", 7, "altered"),
        ("UPDATE records SET conversation_id = 'other' WHERE seq = 4", 4, "altered"),
        ("UPDATE records SET at = at - 86400 WHERE seq = 2", 2, "altered"),
        ("UPDATE records SET key_id = 'k0' WHERE seq = 3", 3, "altered"),
        ("UPDATE records SET categories = 'advice' WHERE seq = 9", 9, "altered"),
        ("UPDATE records SET ciphertext = 'text now' WHERE seq = 6", 6, "altered"),
        ("UPDATE records SET at = 'yesterday' WHERE seq = 8", 8, "altered"),
        ("UPDATE records SET prev_hash = hash WHERE seq = 5", 5, "link"),
        ("DELETE FROM records WHERE seq = 5", 5, "missing"),
        ("DELETE FROM records WHERE seq = 1", 1, "missing"),
        ("DELETE FROM records WHERE seq >= 23", 23, "truncated"),
    ],
)
def test_tampering_is_reported_at_the_first_bad_record(
    archive: Archive, tamper: str, first_bad: int, reason: str
) -> None:
    archive.append(entries(25))
    archive.close()
    raw(archive).execute(tamper)
    result = Archive(archive.path, archive.ring, read_only=True).verify()
    assert result.broken is not None
    assert result.broken.seq == first_bad
    assert reason in result.broken.reason
    assert result.checked == first_bad - 1


def test_reordered_records_are_detected(archive: Archive) -> None:
    archive.append(entries(12))
    db = raw(archive)
    db.execute("UPDATE records SET seq = -3 WHERE seq = 3")
    db.execute("UPDATE records SET seq = 3 WHERE seq = 4")
    db.execute("UPDATE records SET seq = 4 WHERE seq = -3")
    result = archive.verify()
    assert result.broken is not None
    assert result.broken.seq == 3
    assert "reordered" in result.broken.reason


def _rewrite(archive: Archive, hasher: ChainHasher, first: int) -> None:
    """Alter record ``first`` and re-link every later record, as a forger would."""
    db = raw(archive)
    db.execute("UPDATE records SET conversation_id = 'cidElsewhere' WHERE seq = ?", (first,))
    prev = db.execute("SELECT hash FROM records WHERE seq = ?", (first - 1,)).fetchone()[0]
    for stored in list(archive.select(Query())):
        if stored.seq < first:
            continue
        digest = hasher(stored.seq, prev, stored.sealed)
        db.execute(
            "UPDATE records SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, stored.seq)
        )
        prev = digest


def test_a_rehashed_tail_after_the_last_checkpoint_is_detected_without_the_key(
    tmp_path: Path, ring: KeyRing
) -> None:
    archive = Archive(tmp_path / "a.sqlite3", ring, checkpoint_every=20)
    archive.append(entries(20))
    archive.append(entries(5, start=20))  # after the checkpoint at 20: no checkpoint covers it
    forger = ChainHasher(generate(), archive.archive_id)  # the right format, not the firm's key
    _rewrite(archive, forger, 24)
    result = archive.verify()
    assert result.broken is not None
    assert (result.broken.seq, result.checked) == (24, 23)
    assert "altered" in result.broken.reason


def test_the_key_is_what_protects_the_uncheckpointed_tail(tmp_path: Path, ring: KeyRing) -> None:
    # The control for the test above: the same rewrite made WITH the firm's key goes unseen,
    # so the detection above comes from the key and not from a slip in the rewrite.
    archive = Archive(tmp_path / "a.sqlite3", ring, checkpoint_every=20)
    archive.append(entries(20))
    archive.append(entries(5, start=20))
    _rewrite(archive, ChainHasher(ring, archive.archive_id), 24)
    assert archive.verify().ok


def test_a_rehashed_chain_fails_the_signed_checkpoint_even_with_the_chain_key(
    tmp_path: Path, ring: KeyRing
) -> None:
    archive = Archive(tmp_path / "a.sqlite3", ring, checkpoint_every=10)
    archive.append(entries(10))
    archive.append(entries(5, start=10))
    _rewrite(archive, ChainHasher(ring, archive.archive_id), 3)
    result = archive.verify()
    assert result.broken is not None
    assert result.broken.seq == 10
    assert "checkpoint" in result.broken.reason


def test_records_cannot_be_transplanted_from_another_archive(
    tmp_path: Path, ring: KeyRing
) -> None:
    one = Archive(tmp_path / "one.sqlite3", ring)
    other = Archive(tmp_path / "other.sqlite3", ring)
    one.append(entries(3))
    other.append(entries(3))
    db = raw(one)
    db.execute(f"ATTACH DATABASE '{other.path}' AS other")
    db.execute("DELETE FROM records WHERE seq = 1")
    db.execute("INSERT INTO records SELECT * FROM other.records WHERE seq = 1")
    result = one.verify()
    assert result.broken is not None
    assert result.broken.seq == 1  # not 2: the archive id is inside every hash


def test_a_forged_checkpoint_is_reported(archive: Archive) -> None:
    archive.append(entries(5))
    raw(archive).execute("INSERT INTO checkpoints VALUES (99, 'ab', 1.0, 'not a signature')")
    result = archive.verify()
    assert result.broken is not None
    assert result.broken.seq == 99
    assert "forged" in result.broken.reason


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


def test_a_truncation_that_also_drops_checkpoints_is_caught_by_a_witness(
    archive: Archive,
) -> None:
    archive.append(entries(20))
    witness = archive.head()
    assert witness is not None
    assert witness.seq == 20
    shipped = Checkpoint.from_json(witness.to_json())  # as kept off the machine
    archive.append(entries(5, start=20))
    db = raw(archive)
    db.execute("DELETE FROM records WHERE seq > 12")
    db.execute("DELETE FROM checkpoints WHERE seq > 12")
    assert archive.verify().ok  # the documented limit: nothing in the file says 13..25 existed
    result = archive.verify([shipped])
    assert result.broken is not None
    assert result.broken.seq == 13
    assert "witness covers record 20" in result.broken.reason


def test_a_witness_that_disagrees_or_is_forged_or_foreign_breaks_verification(
    archive: Archive, tmp_path: Path
) -> None:
    archive.append(entries(10))
    witness = archive.head()
    assert witness is not None
    wrong_hash = Checkpoint(witness.archive_id, 10, "0" * 64, witness.at, witness.signature)
    foreign = Checkpoint("f" * 32, 10, witness.hash, witness.at, witness.signature)
    assert archive.verify([witness]).ok
    broken = archive.verify([wrong_hash]).broken
    assert broken is not None
    assert "witness signature" in broken.reason
    broken = archive.verify([foreign]).broken
    assert broken is not None
    assert "another archive" in broken.reason


def test_close_signs_the_tail_so_a_later_truncation_shows(tmp_path: Path, ring: KeyRing) -> None:
    archive = Archive(tmp_path / "a.sqlite3", ring, checkpoint_every=1000, checkpoint_seconds=1e12)
    archive.append(entries(7))
    assert archive.verify().last_checkpoint is None
    archive.close()
    raw(archive).execute("DELETE FROM records WHERE seq = 7")
    result = Archive(archive.path, ring, read_only=True).verify()
    assert result.broken is not None
    assert "truncated" in result.broken.reason


def test_the_same_record_delivered_twice_is_written_once(archive: Archive) -> None:
    entry = message_entry(message(1), *outcome(), screened_at=1.0, latency_ms=1.0)
    first = archive.append([entry])
    assert archive.append([entry, entry, *entries(1, start=2)]) == [1, 1, 2]
    assert first == [1]
    assert archive.count() == 2
    assert archive.verify().ok


# -- keys -------------------------------------------------------------------------------------
def test_a_different_key_under_the_same_id_is_called_a_wrong_key(
    archive: Archive, ring: KeyRing
) -> None:
    archive.append(entries(2))
    impostor = KeyRing({"k1": os.urandom(32)}, "k1", ring.signing)
    archive.close()
    with pytest.raises(ArchiveKeyError, match=r"current key id 'k1' names a different key"):
        Archive(archive.path, impostor)
    reader = Archive(archive.path, impostor, read_only=True)
    with pytest.raises(
        ArchiveKeyError,
        match=r"archive record 1 was encrypted with key id 'k1' .* does not match .*wrong key",
    ):
        reader.decrypt(next(reader.select()))


def test_a_wrong_signing_key_is_refused_when_opening(archive: Archive) -> None:
    archive.append(entries(1))
    archive.close()
    with pytest.raises(ArchiveKeyError, match="signing key does not match"):
        Archive(archive.path, generate(), read_only=True)


def test_rotation_keeps_old_records_readable_and_names_a_missing_old_key(
    archive: Archive, ring: KeyRing
) -> None:
    archive.append(entries(3))
    rotated = ring.rotate("k2")
    newer = reopen(archive, rotated)
    newer.append(entries(1, start=99))
    stored = list(newer.select())
    assert [s.sealed.key_id for s in stored] == ["k1", "k1", "k1", "k2"]
    assert all(newer.decrypt(s)["text"] == "hello" for s in stored)
    assert newer.verify().ok  # the chain does not depend on the encryption keys
    only_new = Archive(
        archive.path, KeyRing({"k2": rotated.keys["k2"]}, "k2", ring.signing), read_only=True
    )
    with pytest.raises(ArchiveKeyError, match=r"key id 'k1', which is not in the key ring"):
        only_new.decrypt(stored[0])
    assert only_new.decrypt(stored[3])["text"] == "hello"


# -- retention --------------------------------------------------------------------------------
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


# -- faults -----------------------------------------------------------------------------------
def test_a_full_disk_is_an_error_and_nothing_is_half_written(archive: Archive) -> None:
    archive.append(entries(5))
    pages = archive._db.execute("PRAGMA page_count").fetchone()[0]
    archive._db.execute(f"PRAGMA max_page_count = {pages + 2}")  # the disk fills up now
    with pytest.raises(ArchiveError, match="full"):
        archive.append(entries(200, start=5, text="x" * 2000))
    assert archive.count() == 5
    assert archive.verify().ok
    archive._db.execute("PRAGMA max_page_count = 1073741823")  # space freed
    assert archive.append(entries(1, start=500)) == [6]
    assert archive.verify().ok


def test_an_archive_that_cannot_be_created_is_reported(tmp_path: Path, ring: KeyRing) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.raises(ArchiveError, match="cannot open archive"):
        Archive(blocker / "a.sqlite3", ring)


def test_a_read_only_copy_verifies_and_refuses_writes(archive: Archive, tmp_path: Path) -> None:
    archive.append(entries(7))
    snapshot = tmp_path / "worm" / "snapshot.sqlite3"
    snapshot.parent.mkdir()
    with sqlite3.connect(snapshot) as target:
        archive._db.backup(target)
    snapshot.chmod(0o444)
    copy = Archive(snapshot, archive.ring, read_only=True)
    assert copy.verify().checked == 7
    with pytest.raises(ArchiveError, match="read-only"):
        copy.append(entries(1, start=50))


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("chattr") is None, reason="needs root and chattr"
)
def test_a_file_made_unwritable_mid_run_is_an_error_and_writing_resumes(
    archive: Archive,
) -> None:
    archive.append(entries(3))
    files = [str(archive.path), f"{archive.path}-wal"]
    if subprocess.run(["chattr", "+i", *files], check=False).returncode != 0:
        pytest.skip("the file system does not support the immutable flag")
    try:
        with pytest.raises(ArchiveError, match="archive write failed"):
            archive.append(entries(1, start=3))
    finally:
        subprocess.run(["chattr", "-i", *files], check=True)
    assert archive.count() == 3
    assert archive.append(entries(1, start=4)) == [4]
    assert archive.verify().ok


_CRASH_WRITER = """
import asyncio, sys, time
from pathlib import Path
from bot.audit import AsyncArchive, Archive, message_entry
from bot.audit.keys import load_from_environment
from bot.domain import Decision, Message, Verdict

async def main() -> None:
    writer = AsyncArchive(Archive(Path(sys.argv[1]), load_from_environment(), checkpoint_every=50))
    verdict, decision = Verdict((), (), None, "v"), Decision((), "")
    async def one(i: int) -> None:
        entry = message_entry(Message(id=f"m{i}", text="x" * 400), verdict, decision,
                              screened_at=time.time(), latency_ms=0)
        (seq,) = await writer.record([entry])
        print(seq, flush=True)  # claimed as archived only after the commit returned
    i = 0
    while True:
        await asyncio.gather(*(one(i + j) for j in range(25)))
        i += 25

asyncio.run(main())
"""


def test_a_writer_killed_mid_write_leaves_every_claimed_record_and_continues(
    tmp_path: Path, ring: KeyRing
) -> None:
    key_file = tmp_path / "k.json"
    write_key_file(key_file, ring)
    path = tmp_path / "crash.sqlite3"
    process = subprocess.Popen(
        [sys.executable, "-c", _CRASH_WRITER, str(path)],
        cwd=REPO,
        env={**os.environ, "BOT_ARCHIVE_KEY_FILE": str(key_file)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    claimed = [int(process.stdout.readline()) for _ in range(300)]
    process.send_signal(signal.SIGKILL)  # mid-stream: writes are in flight
    process.wait()
    claimed += [int(line) for line in process.stdout.read().split()]
    survivor = Archive(path, ring)
    result = survivor.verify()
    assert result.ok
    assert result.checked >= max(claimed)  # nothing reported as archived was lost
    survivor.append(entries(3, start=10**6, group="after-crash"))
    after = survivor.verify()
    assert (after.ok, after.checked) == (True, result.checked + 3)


def test_message_action_and_review_records_carry_what_regulators_ask_for(
    archive: Archive,
) -> None:
    flagged = message(7, text="guaranteed 20% return")
    archive.append(
        [
            message_entry(flagged, *outcome(Category.ADVICE), screened_at=10.0, latency_ms=3.2),
            action_entry(flagged, "warn", "failed", {"error": "timeout"}, key="warn:failed:1"),
            action_entry(flagged, "warn", "sent", {"http": 200}, key="warn:sent"),
        ]
    )
    got = [(s.sealed.kind, archive.decrypt(s)) for s in archive.select(Query(message_id="m7"))]
    assert [k for k, _ in got] == ["message", "action", "action"]
    text = got[0][1]
    assert (text["text"], text["conversation_title"], text["source"]) == (
        "guaranteed 20% return",
        "Equities desk",
        "dingtalk",
    )
    assert (text["severity"], text["actions"], text["latency_ms"]) == (
        "high",
        ["log", "warn"],
        3.2,
    )
    assert [(p["status"], p["detail"]) for _, p in got[1:]] == [
        ("failed", {"error": "timeout"}),
        ("sent", {"http": 200}),
    ]


def _stored_kinds(archive: Archive) -> list[str]:
    return [s.sealed.kind for s in archive.select()]


def test_unknown_record_kinds_are_refused(archive: Archive) -> None:
    bogus = Entry("x:1", "gossip", "m1", "", "", (), 1.0, {})
    with pytest.raises(ValueError, match="unknown record kind"):
        archive.append([bogus])
    assert _stored_kinds(archive) == []


def test_records_are_streamed_in_chain_order_with_their_links(archive: Archive) -> None:
    archive.append(entries(3))
    stored: list[Stored] = list(archive.select())
    assert [s.seq for s in stored] == [1, 2, 3]
    assert stored[1].prev_hash == stored[0].hash
