"""`python -m bot audit ...` and the key sources: exit statuses, filters, formats, key handling."""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import logging
import sqlite3
import time
from pathlib import Path

import pytest

from bot.audit import Archive, ArchiveKeyError, action_entry, message_entry, review_entry
from bot.audit import keys as key_sources
from bot.audit.keys import KeyRing, generate, load_from_environment, parse, write_key_file
from bot.cli.audit import register
from bot.domain import Category
from tests.audit.helpers import YEAR, entries, message, outcome


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bot")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.handler(args))


@pytest.fixture
def ring() -> KeyRing:
    return generate()


@pytest.fixture
def key_file(tmp_path: Path, ring: KeyRing, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "keys.json"
    write_key_file(path, ring)
    monkeypatch.setenv("BOT_ARCHIVE_KEY_FILE", str(path))
    monkeypatch.delenv("BOT_ARCHIVE_KEY", raising=False)
    monkeypatch.delenv("BOT_ARCHIVE_KEY_COMMAND", raising=False)
    return path


@pytest.fixture
def path(tmp_path: Path, ring: KeyRing, key_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A closed archive with two groups, two senders, a flagged message and its action."""
    archive_path = tmp_path / "archive.sqlite3"
    monkeypatch.setenv("BOT_ARCHIVE", str(archive_path))
    alice1 = message(1, group="g1", sender="alice", text='=HYPERLINK("http://x")')
    with Archive(archive_path, ring) as archive:
        archive.append(
            [
                message_entry(
                    alice1, *outcome(Category.PII), screened_at=1_700_000_000, latency_ms=1
                ),
                message_entry(
                    message(2, group="g2", sender="bob", text="call Alice Chan on 9123 4567"),
                    *outcome(),
                    screened_at=1_700_100_000,
                    latency_ms=1,
                ),
                action_entry(alice1, "warn", "sent", {"http": 200}, key="warn:sent"),
                message_entry(
                    message(3, group="g2", sender="carol"),
                    *outcome(),
                    screened_at=1_700_200_000,
                    latency_ms=1,
                ),
            ]
        )
    return archive_path


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def export(capsys: pytest.CaptureFixture[str], *extra: str) -> list[object]:
    assert run_cli(["audit", "export", *extra]) == 0
    return [r["message_id"] for r in lines(capsys)]


# -- verify ---------------------------------------------------------------------------------
def test_verify_exits_0_when_intact_and_1_at_the_first_break(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["audit", "verify"]) == 0
    assert "OK: 4 records (seq 1..4)" in capsys.readouterr().out
    with Archive(path, load_from_environment()) as archive:
        archive._db.execute("UPDATE records SET at = at + 1 WHERE seq = 2")
    assert run_cli(["audit", "verify", "--archive", str(path)]) == 1
    assert "BROKEN at record 2" in capsys.readouterr().out
    assert run_cli(["audit", "verify", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["ok"], report["broken"]["seq"], report["checked"]) == (False, 2, 1)


def test_verify_with_a_witness_from_head_catches_a_truncation(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["audit", "head"]) == 0
    witness = tmp_path / "witness.jsonl"
    witness.write_text(capsys.readouterr().out)
    assert json.loads(witness.read_text())["seq"] == 4
    with Archive(path, load_from_environment()) as archive:
        archive._db.execute("DELETE FROM records WHERE seq = 4")
        archive._db.execute("DELETE FROM checkpoints")
    assert run_cli(["audit", "verify"]) == 0  # nothing left in the file says record 4 existed
    capsys.readouterr()
    assert run_cli(["audit", "verify", "--witness", str(witness)]) == 1
    assert "truncated: a witness covers record 4" in capsys.readouterr().out


def test_a_missing_archive_or_key_is_one_line_and_status_1(
    tmp_path: Path,
    key_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_cli(["audit", "verify", "--archive", str(tmp_path / "none.sqlite3")]) == 1
    assert "no archive at" in capsys.readouterr().err
    monkeypatch.delenv("BOT_ARCHIVE_KEY_FILE")
    Archive(tmp_path / "x.sqlite3", generate()).close()
    assert run_cli(["audit", "verify", "--archive", str(tmp_path / "x.sqlite3")]) == 1
    assert "no archive key" in capsys.readouterr().err


def test_a_wrong_key_file_is_named_without_showing_any_key(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = generate()
    wrong = tmp_path / "wrong.json"
    write_key_file(wrong, other)
    monkeypatch.setenv("BOT_ARCHIVE_KEY_FILE", str(wrong))
    assert run_cli(["audit", "export"]) == 1
    err = capsys.readouterr().err
    assert "signing key does not match" in err
    assert "wrong key file" in err
    for secret in (other.signing, other.keys["k1"]):
        assert base64.b64encode(secret).decode() not in err


# -- export -----------------------------------------------------------------------------------
def test_export_filters_by_group_sender_category_message_time_and_kind(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert export(capsys, "--group", "g1") == ["m1", "m1"]
    assert export(capsys, "--sender", "bob") == ["m2"]
    # Category: the flagged message and what was done about it.
    assert export(capsys, "--category", "pii") == ["m1", "m1"]
    assert export(capsys, "--message-id", "m2") == ["m2"]
    assert export(capsys, "--since", "2023-11-15T12:00:00", "--until", "2023-11-17") == ["m2"]
    assert export(
        capsys, "--since", "2023-11-15T20:00:00+08:00", "--until", "2023-11-16T12:00+08:00"
    ) == ["m2"]
    assert export(capsys, "--kind", "action") == ["m1"]
    assert export(capsys, "--group", "g2", "--sender", "carol") == ["m3"]
    assert export(capsys, "--group", "nowhere") == []


def test_export_decrypts_for_the_operator_and_records_the_access(
    path: Path, ring: KeyRing, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run_cli(
            [
                "audit",
                "export",
                "--message-id",
                "m2",
                "--reason",
                "SFC request 42",
                "--operator",
                "officer9",
            ]
        )
        == 0
    )
    (record,) = lines(capsys)
    assert (record["text"], record["sender_id"], record["kind"]) == (
        "call Alice Chan on 9123 4567",
        "bob",
        "message",
    )
    assert record["at"] == "2023-11-16T02:00:00+00:00"
    with Archive(path, ring, read_only=True) as archive:
        access = [archive.decrypt(s) for s in archive.select() if s.sealed.kind == "access"]
        assert archive.verify().ok
    assert [(a["operator"], a["reason"], a["records"]) for a in access] == [
        ("officer9", "SFC request 42", 1)
    ]
    assert access[0]["filters"] == {"message_id": "m2"}


def test_csv_export_is_owner_only_and_defuses_formulas(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.csv"
    out.write_text("an older export")
    out.chmod(0o644)
    assert (
        run_cli(["audit", "export", "--format", "csv", "-o", str(out), "--kind", "message"]) == 0
    )
    assert out.stat().st_mode & 0o777 == 0o600
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["message_id"] for r in rows] == ["m1", "m2", "m3"]
    assert rows[0]["text"] == '\'=HYPERLINK("http://x")'
    assert rows[0]["rule_ids"] == "hkid"
    assert json.loads(rows[0]["other"])["findings"][0]["rule_id"] == "hkid"
    assert "exported 3 records" in capsys.readouterr().err


def test_export_can_show_progress(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["audit", "export", "--progress", "always"]) == 0
    err = capsys.readouterr().err
    assert "100%|" in err  # tqdm's bar, ending at the total
    assert "| 4/4 [" in err
    assert "rec/s" in err


def test_export_from_a_read_only_copy_works_and_says_the_access_was_not_recorded(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], ring: KeyRing
) -> None:
    copy = tmp_path / "copy.sqlite3"
    with Archive(path, ring) as archive, sqlite3.connect(copy) as target:
        archive._db.backup(target)
    with Archive(copy, ring, read_only=True) as snapshot:
        read_only = snapshot.read_only
    assert read_only
    # Without write access the CLI falls back to read-only; simulate with a read-only open.
    original = Archive.__init__

    def read_only_init(self: Archive, *args: object, **kwargs: object) -> None:
        kwargs["read_only"] = True
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    pytest.MonkeyPatch().context()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Archive, "__init__", read_only_init)
        assert run_cli(["audit", "export", "--archive", str(copy)]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 4
    assert "not recorded" in captured.err


# -- person (data-access request) -------------------------------------------------------------
def test_person_gathers_their_messages_and_actions_and_optionally_mentions(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["audit", "person", "alice"]) == 0
    found = lines(capsys)
    assert [(r["kind"], r["message_id"], r["sender_id"]) for r in found] == [
        ("message", "m1", "alice"),
        ("action", "m1", "alice"),
    ]
    assert run_cli(["audit", "person", "alice", "--text", "9123 4567"]) == 0
    with_mentions = [(r["message_id"], r["sender_id"]) for r in lines(capsys)]
    # m2 is Bob's message giving Alice's phone number; m3 is unrelated.
    assert with_mentions == [("m1", "alice"), ("m2", "bob"), ("m1", "alice")]


# -- review, purge, head, stats -----------------------------------------------------------------
def test_review_appends_a_decision_linked_to_the_message(
    path: Path, ring: KeyRing, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run_cli(
            [
                "audit",
                "review",
                "m1",
                "--decision",
                "false_positive",
                "--note",
                "test id",
                "--reviewer",
                "officer1",
            ]
        )
        == 0
    )
    assert "review recorded as record 5" in capsys.readouterr().out
    assert run_cli(["audit", "review", "m404", "--decision", "resolved"]) == 1
    assert "not in the archive" in capsys.readouterr().err
    assert run_cli(["audit", "person", "alice"]) == 0
    kinds = [(r["kind"], r.get("decision")) for r in lines(capsys)]
    assert kinds == [("message", None), ("action", None), ("review", "false_positive")]
    with Archive(path, ring, read_only=True) as archive:
        assert archive.verify().ok


def test_review_entries_reject_unknown_decisions() -> None:
    with pytest.raises(ValueError, match="unknown review decision"):
        review_entry("m1", "officer", "ignored", "")


def test_purge_guards_the_regulatory_minimum_and_reports(
    tmp_path: Path, ring: KeyRing, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive_path = tmp_path / "old.sqlite3"
    with Archive(archive_path, ring) as archive:
        archive.append(entries(3, at=time.time() - 8 * YEAR))
        archive.append(entries(2, start=3, at=time.time() - 3 * YEAR))
    base = ["audit", "purge", "--archive", str(archive_path)]
    assert run_cli([*base, "--years", "1"]) == 1
    assert "18EC30" in capsys.readouterr().err
    assert run_cli([*base, "--years", "2"]) == 1
    assert "--force" in capsys.readouterr().err
    assert run_cli([*base, "--dry-run"]) == 0
    assert "3 records older than" in capsys.readouterr().out
    assert run_cli(base) == 0
    out = capsys.readouterr().out
    assert "purged 3 records" in out
    assert "starts at seq 4" in out
    assert "verify" in out
    assert run_cli([*base, "--years", "2", "--force"]) == 0
    assert "purged 2 records" in capsys.readouterr().out
    assert run_cli(["audit", "verify", "--archive", str(archive_path)]) == 0


def test_purge_uses_the_configured_retention(
    tmp_path: Path,
    ring: KeyRing,
    key_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    archive_path = tmp_path / "old.sqlite3"
    with Archive(archive_path, ring) as archive:
        archive.append(entries(2, at=time.time() - 9 * YEAR))
        archive.append(entries(2, start=2, at=time.time() - 8.5 * YEAR))
    monkeypatch.setenv("BOT_ARCHIVE_RETENTION_YEARS", "8.7")
    assert run_cli(["audit", "purge", "--archive", str(archive_path), "--dry-run"]) == 0
    assert "dry run: 2 records" in capsys.readouterr().out


def test_stats_and_head_need_no_decryption(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["audit", "stats"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["records"] == 4
    assert stats["by_kind"] == {"action": 1, "message": 3}
    assert stats["by_key_id"] == {"k1": 4}
    assert run_cli(["audit", "head"]) == 0
    head = json.loads(capsys.readouterr().out)
    assert (head["seq"], head["archive_id"]) == (4, stats["archive_id"])


# -- keys -------------------------------------------------------------------------------------
def test_keygen_writes_an_owner_only_file_and_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "new.json"
    assert run_cli(["audit", "keygen", str(target), "--key-id", "2026a"]) == 0
    assert target.stat().st_mode & 0o777 == 0o600
    ring = load_from_environment({"BOT_ARCHIVE_KEY_FILE": str(target)})
    assert ring.current == "2026a"
    assert ring.fingerprint("2026a") in capsys.readouterr().out
    before = target.read_bytes()
    assert run_cli(["audit", "keygen", str(target)]) == 1
    assert target.read_bytes() == before
    assert run_cli(["audit", "keygen", "-"]) == 0
    printed = parse(capsys.readouterr().out, "stdout")
    assert printed.current == "k1"


def test_rotate_adds_a_current_key_and_keeps_the_old_ones(
    path: Path, key_file: Path, ring: KeyRing, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["audit", "rotate", str(key_file), "k2"]) == 0
    rotated = load_from_environment()
    assert (rotated.current, rotated.keys["k1"], rotated.signing) == (
        "k2",
        ring.keys["k1"],
        ring.signing,
    )
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert run_cli(["audit", "rotate", str(key_file), "k2"]) == 1
    assert "already exists" in capsys.readouterr().err
    with Archive(path, rotated) as archive:
        archive.append(entries(1, start=9))
    assert export(capsys, "--kind", "message") == ["m1", "m2", "m3", "m9"]


def test_keys_come_from_a_file_the_environment_or_a_command(tmp_path: Path, ring: KeyRing) -> None:
    key_file = tmp_path / "k.json"
    write_key_file(key_file, ring)
    assert load_from_environment({"BOT_ARCHIVE_KEY_FILE": str(key_file)}) == ring
    bare = base64.b64encode(b"\x01" * 32).decode()
    from_env = load_from_environment({"BOT_ARCHIVE_KEY": bare})
    assert from_env.keys == {"default": b"\x01" * 32}
    assert from_env.signing != from_env.keys["default"]
    assert load_from_environment({"BOT_ARCHIVE_KEY_COMMAND": f"echo {bare}"}) == from_env
    command = f"cat {key_file}"
    assert load_from_environment({"BOT_ARCHIVE_KEY_COMMAND": command}) == ring
    # The file wins over the others, whatever they hold.
    both = {"BOT_ARCHIVE_KEY_FILE": str(key_file), "BOT_ARCHIVE_KEY": bare}
    assert load_from_environment(both) == ring


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "no archive key"),
        ({"BOT_ARCHIVE_KEY": "c2hvcnQ="}, "32 bytes"),
        ({"BOT_ARCHIVE_KEY": '{"current": "k1"}'}, "not a valid archive key"),
        ({"BOT_ARCHIVE_KEY_FILE": "/nonexistent/k.json"}, "cannot read"),
        ({"BOT_ARCHIVE_KEY_COMMAND": "false"}, "exited with status 1"),
        ({"BOT_ARCHIVE_KEY_COMMAND": "/nonexistent/vault-cli"}, "could not be run"),
    ],
)
def test_key_source_problems_are_clear_errors(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ArchiveKeyError, match=message):
        load_from_environment(environ)


def test_a_hanging_key_command_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(key_sources, "COMMAND_TIMEOUT_SECONDS", 0.2)
    with pytest.raises(ArchiveKeyError, match="did not finish"):
        load_from_environment({"BOT_ARCHIVE_KEY_COMMAND": "sleep 5"})


def test_key_material_never_appears_in_reprs_or_errors(ring: KeyRing) -> None:
    secrets_b64 = [base64.b64encode(k).decode() for k in (*ring.keys.values(), ring.signing)]
    shown = repr(ring)
    assert all(s not in shown for s in secrets_b64)
    assert "\\x" not in shown
    almost = ring.to_json().replace('"current": "k1"', '"current": "k9"')
    with pytest.raises(ArchiveKeyError) as caught:
        parse(almost, "test")
    assert all(s not in str(caught.value) for s in secrets_b64)
    broken_json = ring.to_json()[:-3]
    with pytest.raises(ArchiveKeyError) as caught:
        parse(broken_json, "test")
    assert all(s not in str(caught.value) for s in secrets_b64)


def test_a_key_file_others_can_read_is_warned_about_by_path_only(
    tmp_path: Path, ring: KeyRing, caplog: pytest.LogCaptureFixture
) -> None:
    loose = tmp_path / "loose.json"
    write_key_file(loose, ring)
    loose.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="bot.audit.keys"):
        assert load_from_environment({"BOT_ARCHIVE_KEY_FILE": str(loose)}) == ring
    assert "chmod 600" in caplog.text
    assert base64.b64encode(ring.signing).decode() not in caplog.text


def test_audit_without_a_subcommand_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as caught:
        run_cli(["audit"])
    assert caught.value.code == 2


def test_screen_archive_records_every_screened_message(
    tmp_path: Path, key_file: Path, ring: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.cli import main  # noqa: PLC0415

    monkeypatch.setenv("BOT_ARCHIVE", str(tmp_path / "screen.sqlite3"))
    assert main(["screen", "--archive", "--no-ner", "client HKID A123456(3)", "lunch at 1?"]) == 0
    with Archive(tmp_path / "screen.sqlite3", ring, read_only=True) as archive:
        stored = list(archive.select())
        assert [archive.decrypt(s)["text"] for s in stored] == [
            "client HKID A123456(3)",
            "lunch at 1?",
        ]
        assert [s.sealed.categories for s in stored] == ["pii", ""]
        assert archive.verify().ok
