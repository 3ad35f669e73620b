"""`python -m bot audit ...`: verify, export, person, purge, keygen, rotate."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bot.audit import default_archive_path, open_archive
from bot.audit.keys import (
    ArchiveKeyError,
    generate,
    load_from_environment,
    parse,
    rotate,
    write_key_file,
)
from bot.audit.store import Archive, ArchiveError, retention_cutoff, sender_reference
from bot.audit.writer import message_entry
from bot.domain import Message, Verdict

EXPORT_FIELDS = ["seq", "kind", "message_id", "conversation_id", "categories", "at", "key_id"]


def register(subparsers: Any) -> None:
    """Add the `audit` command and its subcommands."""
    audit = subparsers.add_parser("audit", help="the tamper-evident archive").add_subparsers(
        title="audit commands", metavar="COMMAND"
    )
    verify = audit.add_parser(
        "verify", help="check the hash chain and signed checkpoints; exit 1 on any break"
    )
    _archive_option(verify)
    verify.set_defaults(handler=cmd_verify)

    export = audit.add_parser("export", help="decrypted records as JSONL or CSV")
    _archive_option(export)
    export.add_argument("--since", help="ISO date/time (UTC), inclusive")
    export.add_argument("--until", help="ISO date/time (UTC), exclusive")
    export.add_argument("--group", help="conversation id")
    export.add_argument("--sender", help="sender id")
    export.add_argument("--category", choices=["advice", "pii", "off_channel"])
    export.add_argument("--message-id")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument("--output", "-o", default="-", help="file, or - for stdout")
    export.set_defaults(handler=cmd_export)

    person = audit.add_parser(
        "person", help="everything recorded about one sender (data-access request)"
    )
    _archive_option(person)
    person.add_argument("sender_id")
    person.set_defaults(handler=cmd_person)

    purge = audit.add_parser(
        "purge", help="remove records past the retention period (default 7 years)"
    )
    _archive_option(purge)
    purge.add_argument("--years", type=float, default=7.0)
    purge.set_defaults(handler=cmd_purge)

    keygen = audit.add_parser("keygen", help="create a key file (mode 0600)")
    keygen.add_argument("path", type=Path)
    keygen.add_argument("--key-id", default="k1")
    keygen.set_defaults(handler=cmd_keygen)

    rotate_cmd = audit.add_parser(
        "rotate", help="add a new current key to a key file; old keys stay for reading"
    )
    rotate_cmd.add_argument("path", type=Path)
    rotate_cmd.add_argument("key_id")
    rotate_cmd.set_defaults(handler=cmd_rotate)


def _archive_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--archive",
        type=Path,
        default=None,
        help="archive file (default: BOT_ARCHIVE or the data directory)",
    )


def _open(args: argparse.Namespace) -> Archive:
    path = args.archive or default_archive_path()
    if not path.exists():
        raise ArchiveError(f"no archive at {path}")
    return open_archive(path)


def _guard(function: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(function(args))
        except (ArchiveError, ArchiveKeyError) as error:
            print(f"audit: {error}", file=sys.stderr)
            return 1

    return run


@_guard
def cmd_verify(args: argparse.Namespace) -> int:
    """Report the first altered, removed, reordered or truncated record."""
    archive = _open(args)
    started = time.monotonic()
    checked, broken = archive.verify()
    elapsed = time.monotonic() - started
    if broken is not None:
        print(
            f"BROKEN at record {broken.seq}: {broken.reason} "
            f"({checked} records verified before it)"
        )
        return 1
    print(f"OK: {checked} records, chain and signed checkpoints intact ({elapsed:.2f} s)")
    return 0


@_guard
def cmd_export(args: argparse.Namespace) -> int:
    """Decrypted records matching the filters."""
    archive = _open(args)
    clauses: list[str] = []
    params: list[Any] = []
    if args.since:
        clauses.append("at >= ?")
        params.append(_timestamp(args.since))
    if args.until:
        clauses.append("at < ?")
        params.append(_timestamp(args.until))
    if args.group:
        clauses.append("conversation_id = ?")
        params.append(args.group)
    if args.sender:
        clauses.append("sender_ref = ?")
        params.append(sender_reference(args.sender, archive.ring))
    if args.category:
        clauses.append("(',' || categories || ',') LIKE ?")
        params.append(f"%,{args.category},%")
    if args.message_id:
        clauses.append("message_id = ?")
        params.append(args.message_id)
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    if args.output == "-":
        written = _write_rows(archive, where, tuple(params), sys.stdout, args.format)
    else:
        with Path(args.output).open("w", encoding="utf-8", newline="") as out:
            written = _write_rows(archive, where, tuple(params), out, args.format)
    print(f"exported {written} records", file=sys.stderr)
    return 0


def _write_rows(
    archive: Archive, where: str, params: tuple[Any, ...], out: TextIO, fmt: str
) -> int:
    total = int(archive._db.execute(f"SELECT COUNT(*) FROM records {where}", params).fetchone()[0])  # noqa: S608
    show_progress = sys.stderr.isatty() and total > 1000
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow([*EXPORT_FIELDS, "payload"])
    written = 0
    for row in archive.rows(where, params):
        record = {field: row[field] for field in EXPORT_FIELDS}
        record["at"] = datetime.fromtimestamp(row["at"], UTC).isoformat()
        payload = archive.decrypt(row)
        if writer is not None:
            writer.writerow([*record.values(), json.dumps(payload, ensure_ascii=False)])
        else:
            out.write(json.dumps({**record, **payload}, ensure_ascii=False) + "\n")
        written += 1
        if show_progress and written % 500 == 0:
            sys.stderr.write(f"\rexporting {written}/{total}")
    if show_progress:
        sys.stderr.write(f"\rexporting {written}/{total}\n")
    return written


@_guard
def cmd_person(args: argparse.Namespace) -> int:
    """Everything about one sender, for a data-access request under the PDPO."""
    archive = _open(args)
    where = "WHERE sender_ref = ?"
    params = (sender_reference(args.sender_id, archive.ring),)
    written = _write_rows(archive, where, params, sys.stdout, "jsonl")
    print(f"{written} records about sender {args.sender_id}", file=sys.stderr)
    return 0


@_guard
def cmd_purge(args: argparse.Namespace) -> int:
    """Remove only expired records; the rest still verifies."""
    archive = _open(args)
    removed = archive.purge(retention_cutoff(args.years))
    checked, broken = archive.verify()
    archive.close()
    print(
        f"purged {removed} records older than {args.years} years; {checked} remain, "
        f"chain {'intact' if broken is None else 'BROKEN'}"
    )
    return 0 if broken is None else 1


def cmd_keygen(args: argparse.Namespace) -> int:
    """Write a new key file; refuses to overwrite one."""
    if args.path.exists():
        print(f"audit: {args.path} exists; refusing to overwrite a key file", file=sys.stderr)
        return 1
    write_key_file(args.path, generate(args.key_id))
    print(
        f"wrote {args.path} (mode 0600). Keep a copy in the firm's key vault: "
        "without it the archive cannot be read."
    )
    return 0


@_guard
def cmd_rotate(args: argparse.Namespace) -> int:
    """New records use the new key; old keys stay in the file to read old records."""
    ring = parse(args.path.read_text(encoding="utf-8"), str(args.path))
    rotated = rotate(ring, args.key_id)
    temporary = args.path.with_suffix(".new")
    write_key_file(temporary, rotated)
    temporary.replace(args.path)
    print(f"current key is now {args.key_id}; {len(rotated.keys)} keys in {args.path}")
    return 0


def _timestamp(value: str) -> float:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class _CliArchiveWriter:
    """For `python -m bot screen --archive`: records each screened message synchronously."""

    def __init__(self) -> None:
        self.archive = open_archive(default_archive_path(), load_from_environment())

    def __call__(self, message: Message, verdict: Verdict) -> None:
        now = time.time()
        self.archive.append([message_entry(message, verdict, screened_at=now, latency_ms=0.0)])

    def close(self) -> None:
        self.archive.close()


def open_archive_for_cli() -> _CliArchiveWriter:
    """The archive writer `screen --archive` uses."""
    return _CliArchiveWriter()
