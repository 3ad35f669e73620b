"""`python -m bot audit ...`: verify, export, person, review, purge, head, stats."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bot.audit import default_archive_path, open_archive, retention_years
from bot.audit.entries import REVIEW_DECISIONS, operator_name, review_entry
from bot.audit.export import export, mentions, record_access
from bot.audit.keys import load_from_environment
from bot.audit.records import sender_reference
from bot.audit.store import (
    Archive,
    ArchiveError,
    Checkpoint,
    Query,
    Verification,
    retention_cutoff,
)
from bot.cli import audit_keys
from bot.cli.common import guard
from bot.domain import Category

Handler = Callable[[argparse.Namespace], int]

# 18EC30: orders received by instant messaging must be kept at least 2 years; below that a
# purge is refused outright. Below the 7 years of the Keeping of Records Rules it needs --force.
MINIMUM_YEARS = 2.0


def register(subparsers: Any) -> None:
    """Add the ``audit`` command and its subcommands to an argparse subparsers object."""
    audit = subparsers.add_parser(
        "audit",
        help="the tamper-evident archive",
        description="The audit archive (docs/archive.md). Keys: BOT_ARCHIVE_KEY_FILE, "
        "BOT_ARCHIVE_KEY or BOT_ARCHIVE_KEY_COMMAND; archive: BOT_ARCHIVE or --archive.",
    )
    commands = audit.add_subparsers(title="audit commands", metavar="COMMAND", required=True)

    verify = commands.add_parser(
        "verify", help="check the chain, checkpoints and witnesses; exit 1 on any break"
    )
    _archive_option(verify)
    verify.add_argument(
        "--witness",
        type=Path,
        action="append",
        default=[],
        help="a file of checkpoints saved by `audit head` (JSON lines); repeatable",
    )
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.set_defaults(handler=cmd_verify)

    export_cmd = commands.add_parser("export", help="decrypted records as JSONL or CSV")
    _archive_option(export_cmd)
    export_cmd.add_argument(
        "--since", type=_timestamp, help="ISO date/time, inclusive (naive = UTC)"
    )
    export_cmd.add_argument(
        "--until", type=_timestamp, help="ISO date/time, exclusive (naive = UTC)"
    )
    export_cmd.add_argument("--group", help="conversation id")
    export_cmd.add_argument("--sender", help="sender id")
    export_cmd.add_argument(
        "--category",
        choices=[c.value for c in Category],
        help="flagged messages in this category, with their actions and reviews",
    )
    export_cmd.add_argument("--message-id")
    export_cmd.add_argument(
        "--kind",
        action="append",
        default=[],
        choices=["message", "action", "review", "access", "purge"],
    )
    _output_options(export_cmd)
    export_cmd.set_defaults(handler=cmd_export)

    person = commands.add_parser(
        "person", help="everything recorded about one person (a PDPO data-access request)"
    )
    _archive_option(person)
    person.add_argument("sender_id", help="the person's DingTalk user id")
    person.add_argument(
        "--text",
        action="append",
        default=[],
        metavar="NEEDLE",
        help="also records mentioning this (name, phone, HKID) in any message; scans and "
        "decrypts the whole archive; repeatable",
    )
    _output_options(person)
    person.set_defaults(handler=cmd_person)

    review = commands.add_parser("review", help="append a reviewer's decision on a message")
    _archive_option(review)
    review.add_argument("message_id")
    review.add_argument("--decision", required=True, choices=REVIEW_DECISIONS)
    review.add_argument("--note", default="")
    review.add_argument("--reviewer", default=None, help="default: the OS user")
    review.set_defaults(handler=cmd_review)

    purge = commands.add_parser(
        "purge", help="remove records past the retention period (BOT_ARCHIVE_RETENTION_YEARS, 7)"
    )
    _archive_option(purge)
    purge.add_argument("--years", type=float, default=None)
    purge.add_argument("--dry-run", action="store_true", help="only count what would go")
    purge.add_argument("--force", action="store_true", help="allow a period under 7 years")
    purge.add_argument("--reason", default="retention period over")
    purge.add_argument("--operator", default=None, help="default: the OS user")
    purge.set_defaults(handler=cmd_purge)

    head = commands.add_parser(
        "head", help="sign the current tail and print it (JSON): ship it to a witness store"
    )
    _archive_option(head)
    head.set_defaults(handler=cmd_head)

    stats = commands.add_parser("stats", help="counts, positions, checkpoints (no decryption)")
    _archive_option(stats)
    stats.set_defaults(handler=cmd_stats)

    audit_keys.register(commands)


def _archive_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--archive",
        type=Path,
        default=None,
        help="archive file (default: BOT_ARCHIVE or the user's data directory)",
    )


def _output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    parser.add_argument("--output", "-o", default="-", help="file (created 0600), or - for stdout")
    parser.add_argument(
        "--progress",
        choices=["auto", "always", "never"],
        default="auto",
        help="progress line on stderr (auto: on a terminal, for long exports)",
    )
    parser.add_argument("--reason", default="", help="why (a case or request number): recorded")
    parser.add_argument("--operator", default=None, help="who (default: the OS user): recorded")


def _timestamp(value: str) -> float:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date/time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@contextmanager
def _opened(args: argparse.Namespace, *, write: bool) -> Iterator[Archive]:
    path: Path = args.archive or default_archive_path()
    if not path.exists():
        raise ArchiveError(f"no archive at {path} (set BOT_ARCHIVE or pass --archive)")
    ring = load_from_environment()
    if write:
        try:
            archive = open_archive(path, ring)
        except ArchiveError:
            # A copy on write-once storage: read it, say that nothing can be added.
            archive = open_archive(path, ring, read_only=True)
    else:
        archive = open_archive(path, ring, read_only=True)
    try:
        yield archive
    finally:
        archive.close()


@contextmanager
def _output(target: str) -> Iterator[TextIO]:
    if target == "-":
        yield sys.stdout
        return
    # Decrypted personal data: readable by the operator only.
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # also when overwriting a file that was more open
    with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
        yield handle


def _show_progress(choice: str) -> bool | None:
    return {"always": True, "never": False}.get(choice)


@guard
def cmd_verify(args: argparse.Namespace) -> int:
    """Report the first altered, removed, reordered or truncated record; exit 1 on a break."""
    witnesses = [
        Checkpoint.from_json(json.loads(line))
        for path in args.witness
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    with _opened(args, write=False) as archive:
        started = time.monotonic()
        result = archive.verify(witnesses)
        elapsed = time.monotonic() - started
    if args.json:
        print(json.dumps({"ok": result.ok, "seconds": round(elapsed, 3), **_as_dict(result)}))
        return 0 if result.ok else 1
    if result.broken is not None:
        print(
            f"BROKEN at record {result.broken.seq}: {result.broken.reason} "
            f"({result.checked:,} records verified before it)"
        )
        return 1
    span = f"seq {result.first_seq}..{result.last_seq}" if result.checked else "empty"
    print(
        f"OK: {result.checked:,} records ({span}) verified in {elapsed:.2f} s; "
        f"{result.checkpoints} signed checkpoints, newest at seq {result.last_checkpoint}; "
        f"{result.witnesses} witnesses"
    )
    if result.unwitnessed_tail:
        print(
            f"note: {result.unwitnessed_tail} records after the newest checkpoint; a truncation "
            "of those alone would not show (ship `audit head` output to a witness store)"
        )
    return 0


def _as_dict(result: Verification) -> dict[str, Any]:
    broken = result.broken
    return {
        "checked": result.checked,
        "first_seq": result.first_seq,
        "last_seq": result.last_seq,
        "checkpoints": result.checkpoints,
        "last_checkpoint": result.last_checkpoint,
        "witnesses": result.witnesses,
        "broken": None if broken is None else {"seq": broken.seq, "reason": broken.reason},
    }


@guard
def cmd_export(args: argparse.Namespace) -> int:
    """Decrypted records matching the filters (an authorised operator holds the key)."""
    with _opened(args, write=True) as archive:
        query = Query(
            since=args.since,
            until=args.until,
            group=args.group,
            sender_ref=sender_reference(args.sender, archive.ring) if args.sender else None,
            category=args.category,
            message_id=args.message_id,
            kinds=tuple(args.kind),
        )
        with _output(args.output) as out:
            written = export(
                archive, query, out, args.format, show_progress=_show_progress(args.progress)
            )
        filters = {
            k: getattr(args, k)
            for k in ("since", "until", "group", "sender", "category", "message_id", "kind")
            if getattr(args, k)
        }
        _note_access(archive, args, "export", filters, written)
    print(f"exported {written:,} records", file=sys.stderr)
    return 0


@guard
def cmd_person(args: argparse.Namespace) -> int:
    """Everything about one person, for a data-access request under the PDPO."""
    with _opened(args, write=True) as archive:
        reference = sender_reference(args.sender_id, archive.ring)
        progress = _show_progress(args.progress)
        with _output(args.output) as out:
            if args.text:
                # Mentions by others live only in encrypted text: decrypt everything once.
                wanted = mentions(args.text)
                written = export(
                    archive,
                    Query(),
                    out,
                    args.format,
                    show_progress=progress,
                    keep=lambda stored, payload: (
                        stored.sealed.sender_ref == reference or wanted(stored, payload)
                    ),
                )
            else:
                written = export(
                    archive, Query(sender_ref=reference), out, args.format, show_progress=progress
                )
        _note_access(
            archive, args, "person", {"sender_id": args.sender_id, "text": args.text}, written
        )
    print(f"{written:,} records about {args.sender_id}", file=sys.stderr)
    return 0


def _note_access(
    archive: Archive, args: argparse.Namespace, command: str, filters: dict[str, Any], count: int
) -> None:
    output = "stdout" if args.output == "-" else str(Path(args.output).resolve())
    try:
        seq = record_access(
            archive,
            command=command,
            filters=filters,
            records=count,
            output=output,
            operator=args.operator,
            reason=args.reason,
        )
    except ArchiveError as error:
        print(f"audit: warning: this access could not be recorded: {error}", file=sys.stderr)
        return
    if seq is None:
        print("audit: warning: read-only copy; this access is not recorded in it", file=sys.stderr)


@guard
def cmd_review(args: argparse.Namespace) -> int:
    """Append a reviewer's decision; the message must be in the archive."""
    with _opened(args, write=True) as archive:
        stored = archive.message_record(args.message_id)
        if stored is None:
            raise ArchiveError(f"message {args.message_id!r} is not in the archive")
        sender_id = str(archive.decrypt(stored).get("sender_id", ""))
        entry = review_entry(
            args.message_id,
            args.reviewer or operator_name(),
            args.decision,
            args.note,
            conversation_id=stored.sealed.conversation_id,
            sender_id=sender_id,
        )
        (seq,) = archive.append([entry])
    print(f"review recorded as record {seq}")
    return 0


@guard
def cmd_purge(args: argparse.Namespace) -> int:
    """Remove only expired records; the rest still verifies and the purge itself is recorded."""
    years = args.years if args.years is not None else retention_years()
    if years < MINIMUM_YEARS:
        raise ArchiveError(
            f"refusing a {years:g}-year retention: IM order records must be kept at least "
            f"{MINIMUM_YEARS:g} years (SFC circular 18EC30)"
        )
    if years < 7 and not args.force:
        raise ArchiveError(
            f"{years:g} years is under the 7 years of the SFC Keeping of Records Rules; "
            "pass --force if the firm's policy allows it for these records"
        )
    cutoff = retention_cutoff(years)
    with _opened(args, write=not args.dry_run) as archive:
        done = archive.purge(
            cutoff, operator=args.operator or "", reason=args.reason, dry_run=args.dry_run
        )
        after = archive.verify()
    when = datetime.fromtimestamp(cutoff, UTC).isoformat(timespec="seconds")
    if args.dry_run:
        print(f"dry run: {done.removed:,} records older than {when} would be purged")
        return 0
    print(
        f"purged {done.removed:,} records older than {when}; the chain now starts at seq "
        f"{done.first_kept}; {after.checked:,} records remain and "
        f"{'verify' if after.ok else 'DO NOT VERIFY'}"
        + (f"; purge recorded as record {done.record_seq}" if done.record_seq else "")
    )
    return 0 if after.ok else 1


@guard
def cmd_head(args: argparse.Namespace) -> int:
    """Print the newest signed checkpoint (made at the tail now if the file is writable)."""
    with _opened(args, write=True) as archive:
        checkpoint = archive.head()
    if checkpoint is None:
        raise ArchiveError("the archive is empty: nothing to sign")
    print(json.dumps(checkpoint.to_json()))
    return 0


@guard
def cmd_stats(args: argparse.Namespace) -> int:
    """Counts and positions, without decrypting anything."""
    with _opened(args, write=False) as archive:
        print(json.dumps(archive.stats(), indent=2))
    return 0
