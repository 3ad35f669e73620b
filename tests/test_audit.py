"""The audit archive: chain, tampering of each kind, keys, rotation, purge, crash, export."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.audit import (
    Archive,
    ArchiveError,
    ArchiveKeyError,
    Archiver,
    AsyncArchive,
    RedisArchiveSink,
)
from bot.audit.cli import register
from bot.audit.keys import generate, load_from_environment, parse, rotate, write_key_file
from bot.audit.store import retention_cutoff
from bot.audit.writer import action_entry, message_entry
from bot.domain import Action, Category, Finding, Message, Severity, Verdict

REPO = Path(__file__).resolve().parent.parent


def message(
    n: int, *, group: str = "cidDesk", sender: str = "staff1", text: str = "hello"
) -> Message:
    return Message(
        id=f"m{n}",
        text=text,
        conversation_id=group,
        sender_id=sender,
        sender_name="Alice",
        source="dingtalk",
    )


def verdict(category: Category | None = None) -> Verdict:
    findings = ()
    if category is not None:
        findings = (
            Finding("hkid", category, Severity.HIGH, 0, 10, 1.0, "checksum ok", "HKID", True),
        )
    return Verdict(
        findings,
        (category,) if category else (),
        Severity.HIGH if category else None,
        (Action.LOG,),
        "A123***(*)",
        "v1",
    )


def fill(archive: Archive, count: int, **kwargs: object) -> None:
    archive.append(
        [
            message_entry(message(i, **kwargs), verdict(), screened_at=time.time(), latency_ms=1.0)
            for i in range(count)
        ]
    )  # type: ignore[arg-type]


@pytest.fixture
def ring():  # type: ignore[no-untyped-def]
    return generate()


@pytest.fixture
def archive(tmp_path: Path, ring) -> Archive:  # type: ignore[no-untyped-def]
    return Archive(tmp_path / "a.sqlite3", ring, checkpoint_every=10)


def raw(archive: Archive) -> sqlite3.Connection:
    return sqlite3.connect(archive.path, isolation_level=None)


def test_records_are_encrypted_at_rest_and_readable_with_the_key(archive: Archive) -> None:
    archive.append(
        [
            message_entry(
                message(1, text="客戶 HKID A123456(3)"),
                verdict(Category.PII),
                screened_at=1.0,
                latency_ms=2.0,
            )
        ]
    )
    blob = archive.path.read_bytes() + Path(str(archive.path) + "-wal").read_bytes()
    assert b"A123456" not in blob
    assert b"staff1" not in blob  # the sender id is encrypted; only a keyed hash is clear
    (row,) = list(archive.rows())
    payload = archive.decrypt(row)
    assert payload["text"] == "客戶 HKID A123456(3)"
    assert payload["rule_ids"] == ["hkid"]
    assert row["key_id"] == "k1"
    assert row["categories"] == "pii"


def test_intact_chain_verifies(archive: Archive) -> None:
    fill(archive, 25)
    assert archive.verify() == (25, None)


@pytest.mark.parametrize(
    ("tamper", "first_bad", "reason"),
    [
        ("UPDATE records SET ciphertext = X'00' || ciphertext WHERE seq = 7", 7, "altered"),
        ("UPDATE records SET conversation_id = 'other' WHERE seq = 4", 4, "altered"),
        ("DELETE FROM records WHERE seq = 5", 5, "missing"),
        ("DELETE FROM records WHERE seq >= 23", 23, "truncated"),
    ],
)
def test_tampering_is_detected_at_the_first_bad_record(
    archive: Archive, tamper: str, first_bad: int, reason: str
) -> None:
    fill(archive, 25)
    archive.close()
    raw(archive).execute(tamper)
    reopened = Archive(archive.path, archive.ring)
    _checked, broken = reopened.verify()
    assert broken is not None
    assert broken.seq == first_bad
    assert reason in broken.reason


def test_reordered_records_are_detected(archive: Archive) -> None:
    fill(archive, 12)
    db = raw(archive)
    columns = "record_key, kind, message_id, conversation_id, sender_ref, categories, at, key_id, nonce, ciphertext, prev_hash, hash"
    row3 = db.execute(f"SELECT {columns} FROM records WHERE seq = 3").fetchone()
    row4 = db.execute(f"SELECT {columns} FROM records WHERE seq = 4").fetchone()
    db.execute("DELETE FROM records WHERE seq IN (3, 4)")
    placeholders = ",".join("?" * 12)
    db.execute(f"INSERT INTO records (seq, {columns}) VALUES (3, {placeholders})", row4)
    db.execute(f"INSERT INTO records (seq, {columns}) VALUES (4, {placeholders})", row3)
    _checked, broken = Archive(archive.path, archive.ring).verify()
    assert broken is not None
    assert broken.seq == 3


def test_a_rewritten_chain_fails_the_signed_checkpoint(archive: Archive, tmp_path: Path) -> None:
    fill(archive, 20)
    archive.close()
    # An insider with database access but not the firm's signing key rebuilds a consistent chain.
    forger = Archive(tmp_path / "forged.sqlite3", generate(), checkpoint_every=10_000)
    fill(forger, 20, text="rewritten history")
    forger._db.commit()
    db = raw(archive)
    db.execute("DELETE FROM records")
    db.execute(f"ATTACH DATABASE '{forger.path}' AS f")
    db.execute("INSERT INTO records SELECT * FROM f.records")
    _checked, broken = Archive(archive.path, archive.ring).verify()
    assert broken is not None
    assert "checkpoint" in broken.reason


def test_cli_verify_exit_status(
    archive: Archive,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    fill(archive, 5)
    archive.close()
    key_file = tmp_path / "keys.json"
    write_key_file(key_file, archive.ring)
    monkeypatch.setenv("BOT_ARCHIVE_KEY_FILE", str(key_file))
    assert run_cli(["audit", "verify", "--archive", str(archive.path)]) == 0
    assert "OK: 5 records" in capsys.readouterr().out
    raw(archive).execute("UPDATE records SET at = at + 1 WHERE seq = 2")
    assert run_cli(["audit", "verify", "--archive", str(archive.path)]) == 1
    assert "BROKEN at record 2" in capsys.readouterr().out


def run_cli(argv: list[str]) -> int:
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.handler(args))


def test_wrong_key_says_so(archive: Archive) -> None:
    fill(archive, 1)
    other = Archive(archive.path, generate())
    with pytest.raises(ArchiveKeyError, match="cannot be decrypted with key id 'k1'"):
        other.decrypt(next(other.rows()))


def test_rotation_keeps_old_records_readable(archive: Archive, tmp_path: Path) -> None:
    fill(archive, 3)
    rotated = rotate(archive.ring, "k2")
    archive.close()
    newer = Archive(archive.path, rotated)
    newer.append([message_entry(message(99), verdict(), screened_at=time.time(), latency_ms=1.0)])
    rows = list(newer.rows())
    assert [r["key_id"] for r in rows] == ["k1", "k1", "k1", "k2"]
    assert all(newer.decrypt(r)["text"] == "hello" for r in rows)
    assert newer.verify() == (4, None)
    only_new = Archive(
        archive.path,
        parse(
            json.dumps(
                {
                    "current": "k2",
                    "keys": {"k2": _b64(rotated.keys["k2"])},
                    "signing": _b64(rotated.signing),
                }
            ),
            "test",
        ),
    )
    with pytest.raises(ArchiveKeyError, match="key id 'k1'"):
        only_new.decrypt(rows[0])


def _b64(raw_key: bytes) -> str:
    import base64  # noqa: PLC0415

    return base64.b64encode(raw_key).decode()


def test_duplicate_record_keys_are_written_once(archive: Archive) -> None:
    entry = message_entry(message(1), verdict(), screened_at=1.0, latency_ms=1.0)
    first = archive.append([entry])
    again = archive.append([entry])
    assert first == again
    assert archive.count() == 1


def test_purge_removes_only_expired_records_and_the_chain_still_verifies(archive: Archive) -> None:
    now = time.time()
    old = [
        message_entry(message(i), verdict(), screened_at=now - 8 * 365 * 86400, latency_ms=1.0)
        for i in range(6)
    ]
    new = [
        message_entry(message(i + 100), verdict(), screened_at=now, latency_ms=1.0)
        for i in range(4)
    ]
    archive.append(old + new)
    assert archive.purge(retention_cutoff(7, now)) == 6
    assert archive.count() == 4
    assert archive.verify() == (4, None)
    fill(archive, 2, group="cidLater")  # appending continues the chain after the anchor
    assert archive.verify() == (6, None)


def test_export_filters_and_person(
    archive: Archive,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    archive.append(
        [
            message_entry(
                message(1, group="g1", sender="alice"),
                verdict(Category.PII),
                screened_at=1_700_000_000,
                latency_ms=1,
            ),
            message_entry(
                message(2, group="g2", sender="bob"),
                verdict(),
                screened_at=1_700_100_000,
                latency_ms=1,
            ),
            action_entry(message(1, group="g1", sender="alice"), "warn", "sent", {"http": 200}),
        ]
    )
    archive.close()
    key_file = tmp_path / "k.json"
    write_key_file(key_file, archive.ring)
    monkeypatch.setenv("BOT_ARCHIVE_KEY_FILE", str(key_file))
    base = ["audit", "export", "--archive", str(archive.path)]

    def export(*extra: str) -> list[dict[str, object]]:
        assert run_cli([*base, *extra]) == 0
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    assert [r["message_id"] for r in export("--group", "g1")] == ["m1", "m1"]
    assert [r["message_id"] for r in export("--category", "pii")] == ["m1"]
    assert [r["message_id"] for r in export("--sender", "bob")] == ["m2"]
    assert [r["message_id"] for r in export("--message-id", "m2")] == ["m2"]
    assert [
        r["message_id"]
        for r in export("--since", "2023-11-15T12:00:00", "--until", "2023-11-17T00:00:00")
    ] == ["m2"]
    assert run_cli(["audit", "person", "alice", "--archive", str(archive.path)]) == 0
    person = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["kind"], r["sender_id"]) for r in person] == [
        ("message", "alice"),
        ("action", "alice"),
    ]
    out = tmp_path / "out.csv"
    assert run_cli([*base, "--format", "csv", "--output", str(out)]) == 0
    assert out.read_text().splitlines()[0].startswith("seq,kind,message_id")


def test_unwritable_archive_is_reported(tmp_path: Path, ring) -> None:  # type: ignore[no-untyped-def]
    archive = Archive(tmp_path / "a.sqlite3", ring)
    fill(archive, 1)
    archive.close()
    archive.path.chmod(0o400)
    for suffix in ("-wal", "-shm"):
        Path(str(archive.path) + suffix).unlink(missing_ok=True)
    if os.geteuid() == 0:
        # root ignores file modes; make the file read-only through SQLite instead.
        readonly = Archive.__new__(Archive)
        readonly.__dict__.update(archive.__dict__)
        readonly._db = sqlite3.connect(
            f"file:{archive.path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None
        )
        readonly._lock = __import__("threading").Lock()
        with pytest.raises(ArchiveError, match="archive write failed"):
            readonly.append(
                [message_entry(message(2), verdict(), screened_at=1.0, latency_ms=1.0)]
            )
        return
    with pytest.raises(ArchiveError):
        Archive(archive.path, ring).append(
            [message_entry(message(2), verdict(), screened_at=1.0, latency_ms=1.0)]
        )


def test_killed_writer_leaves_a_verifiable_archive_that_continues(tmp_path: Path, ring) -> None:  # type: ignore[no-untyped-def]
    key_file = tmp_path / "k.json"
    write_key_file(key_file, ring)
    path = tmp_path / "crash.sqlite3"
    script = (
        "import time, sys\n"
        "from pathlib import Path\n"
        "from bot.audit import Archive\nfrom bot.audit.keys import load_from_environment\n"
        "from bot.audit.writer import message_entry\nfrom bot.domain import Message, Verdict\n"
        f"a = Archive(Path({str(path)!r}), load_from_environment(), checkpoint_every=50)\n"
        "v = Verdict((), (), None, (), '', 'v')\n"
        "i = 0\n"
        "while True:\n"
        "    a.append([message_entry(Message(id=f'm{i}-{j}', text='x' * 500), v, screened_at=time.time(), latency_ms=0) for j in range(20)])\n"
        "    i += 1\n"
        "    if i == 5: print('ready', flush=True)\n"
    )
    env = {**os.environ, "BOT_ARCHIVE_KEY_FILE": str(key_file)}
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, env=env, stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"ready"
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    survivor = Archive(path, ring)
    checked, broken = survivor.verify()
    assert broken is None
    assert checked >= 100
    assert checked % 20 == 0  # whole batches only: a transaction is all or nothing
    fill(survivor, 3, group="after-crash")
    assert survivor.verify() == (checked + 3, None)


async def test_async_facade_returns_after_commit_and_batches(archive: Archive) -> None:
    facade = AsyncArchive(archive)
    seqs = await asyncio.gather(
        *(
            facade.record_message(message(i), verdict(), screened_at=time.time(), latency_ms=1.0)
            for i in range(200)
        )
    )
    assert sorted(seqs) == list(range(1, 201))
    assert archive.count() == 200
    facade.close()
    assert Archive(archive.path, archive.ring).verify() == (200, None)


async def test_two_replicas_through_redis_make_one_verifiable_archive(archive: Archive) -> None:
    stream = f"test:audit:{uuid.uuid4().hex}"
    client = aioredis.Redis(host="127.0.0.1", port=6379, decode_responses=True)
    try:
        replica_a = RedisArchiveSink(client, archive.ring, stream)
        replica_b = RedisArchiveSink(client, archive.ring, stream)
        await replica_a.record(
            [message_entry(message(1), verdict(), screened_at=1.0, latency_ms=1.0)]
        )
        await replica_b.record(
            [message_entry(message(2), verdict(), screened_at=2.0, latency_ms=1.0)]
        )
        # Redelivery of the same record (at least once) must not duplicate it.
        await replica_b.record(
            [message_entry(message(2), verdict(), screened_at=2.0, latency_ms=1.0)]
        )
        crashed = Archiver(client, archive, consumer="crashed", stream=stream)
        await crashed.ensure_group()
        # The first archiver reads but dies before XACK: the records stay pending ...
        await client.xreadgroup(crashed.group, "crashed", {stream: ">"}, count=10)
        survivor = Archiver(client, archive, consumer="survivor", stream=stream)
        # ... and the next archiver claims them.
        assert await survivor.run_once(block_ms=10, claim_idle_ms=0) == 3
        assert archive.count() == 2
        assert archive.verify() == (2, None)
        assert await client.xpending(stream, survivor.group) == {
            "pending": 0,
            "min": None,
            "max": None,
            "consumers": [],
        }
    finally:
        await client.delete(stream)
        await client.aclose()


def test_key_sources(tmp_path: Path, ring) -> None:  # type: ignore[no-untyped-def]
    key_file = tmp_path / "k.json"
    write_key_file(key_file, ring)
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert load_from_environment({"BOT_ARCHIVE_KEY_FILE": str(key_file)}) == ring
    bare = _b64(b"\x01" * 32)
    from_env = load_from_environment({"BOT_ARCHIVE_KEY": bare})
    assert from_env.keys == {"default": b"\x01" * 32}
    assert from_env.signing != from_env.keys["default"]
    from_command = load_from_environment({"BOT_ARCHIVE_KEY_COMMAND": f"echo {bare}"})
    assert from_command == from_env
    with pytest.raises(ArchiveKeyError, match="no archive key"):
        load_from_environment({})
    with pytest.raises(ArchiveKeyError, match=r"not a valid archive key|32 bytes"):
        load_from_environment({"BOT_ARCHIVE_KEY": "not-base64!"})


def test_screen_archive_records_every_screened_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ring
) -> None:  # type: ignore[no-untyped-def]
    from bot.cli import main  # noqa: PLC0415

    key_file = tmp_path / "k.json"
    write_key_file(key_file, ring)
    monkeypatch.setenv("BOT_ARCHIVE_KEY_FILE", str(key_file))
    monkeypatch.setenv("BOT_ARCHIVE", str(tmp_path / "screen.sqlite3"))
    assert main(["screen", "--archive", "--no-ner", "client HKID A123456(3)", "lunch at 1?"]) == 0
    archive = Archive(tmp_path / "screen.sqlite3", ring)
    rows = list(archive.rows())
    assert [archive.decrypt(r)["text"] for r in rows] == ["client HKID A123456(3)", "lunch at 1?"]
    assert [r["categories"] for r in rows] == ["pii", ""]
    assert archive.verify() == (2, None)
