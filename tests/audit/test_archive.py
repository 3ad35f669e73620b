"""The Archive: encryption at rest, idempotent appends, what a record holds, faults."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.audit import Archive, ArchiveError, ArchiveKeyError, Query
from bot.audit.entries import action_entry, message_entry
from bot.audit.keys import KeyRing, write_key_file
from bot.audit.records import Entry
from bot.domain import Category
from tests.audit.helpers import entries, message, outcome, raw

ROOT = Path(__file__).resolve().parents[2]  # where `import bot` works


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


# -- appending --------------------------------------------------------------------------------


def test_the_same_record_delivered_twice_is_written_once(archive: Archive) -> None:
    entry = message_entry(message(1), *outcome(), screened_at=1.0, latency_ms=1.0)
    first = archive.append([entry])
    assert archive.append([entry, entry, *entries(1, start=2)]) == [1, 1, 2]
    assert first == [1]
    assert archive.count() == 2
    assert archive.verify().ok


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
        cwd=ROOT,
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
