"""`screen`: verdicts for messages given as arguments (readable) or JSON lines (JSON lines out)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TextIO

from tqdm import tqdm

from bot.audit import Archive, message_entry, open_archive
from bot.cli.common import add_engine_options, load_screener
from bot.cli.render import Summary, dumps, render_verdict
from bot.domain import Decision, Message, Verdict
from bot.engine.screener import Screener
from bot.policy import decide


class Recorder(Protocol):
    """Where `screen --archive` puts each message (the audit archive, or a test's list)."""

    def __call__(self, message: Message, verdict: Verdict, decision: Decision) -> None:
        """Record one screened message."""


def register(subparsers: Any) -> None:
    """Add ``screen``."""
    screen = subparsers.add_parser(
        "screen", help="screen messages given as arguments or JSON lines"
    )
    screen.add_argument("texts", nargs="*", metavar="TEXT", help="messages to screen")
    screen.add_argument(
        "--jsonl", metavar="FILE", help='JSON lines {"id", "text", ...}; "-" for stdin'
    )
    add_engine_options(screen)
    screen.add_argument(
        "--summary",
        action="store_true",
        help="print a per-category summary even when not on a terminal",
    )
    screen.add_argument(
        "--archive",
        action="store_true",
        help="also write every message and verdict to the audit archive (BOT_ARCHIVE)",
    )
    screen.set_defaults(handler=cmd_screen)


def cmd_screen(args: argparse.Namespace) -> int:
    """`screen`: verdicts for arguments (readable) or a JSON-lines file (JSON lines out)."""
    if not args.texts and not args.jsonl:
        print("give messages to screen, or --jsonl FILE (- for stdin)", file=sys.stderr)
        return 2
    screener = load_screener(args)
    archive = open_archive() if args.archive else None
    record = ArchiveRecorder(archive) if archive is not None else None
    try:
        if args.jsonl:
            return screen_jsonl(
                screener, args.jsonl, sys.stdout, sys.stderr, summary=args.summary, record=record
            )
        for index, text in enumerate(args.texts):
            verdict = screener.screen(text)
            decision = decide(verdict, text, screener.policy)
            if record is not None:
                message = Message(id=f"cli-{time.time_ns()}-{index}", text=text, source="cli")
                record(message, verdict, decision)
            print(render_verdict(text, verdict, decision))
            print()
        return 0
    finally:
        if archive is not None:
            archive.close()


class ArchiveRecorder:
    """Records each screened message in the archive, synchronously (committed on return)."""

    def __init__(self, archive: Archive) -> None:
        """Write to ``archive`` (the caller closes it)."""
        self.archive = archive

    def __call__(self, message: Message, verdict: Verdict, decision: Decision) -> None:
        """Append the message with its verdict and decision."""
        entry = message_entry(message, verdict, decision, screened_at=time.time(), latency_ms=0.0)
        self.archive.append([entry])


def screen_jsonl(
    screener: Screener,
    source: str,
    out: TextIO,
    err: TextIO,
    *,
    summary: bool = False,
    record: Recorder | None = None,
) -> int:
    """Screen every line of ``source``; one JSON verdict per good line, in order, on ``out``."""
    stream: BinaryIO = sys.stdin.buffer if source == "-" else Path(source).open("rb")  # noqa: SIM115
    counts = Summary()
    # The bar only on a terminal; problems are written above it, never glued to it.
    bar = tqdm(
        total=_count_lines(source), file=err, unit="msg", disable=not err.isatty(), leave=True
    )
    try:
        for line_number, item, error in read_jsonl(stream):
            bar.update(line_number - bar.n)  # blank lines count too: the bar ends at 100 %
            if error is not None:
                counts.errors += 1
                bar.write(f"{source}:{line_number}: {error}", file=err)
                continue
            assert item is not None  # noqa: S101
            text = item["text"]
            verdict = screener.screen(text)
            decision = decide(verdict, text, screener.policy)
            counts.add(verdict)
            if record is not None:
                message = Message(id=str(item.get("id", line_number)), text=text, source="file")
                record(message, verdict, decision)
            out.write(dumps({**item, "id": item.get("id"), **_result(verdict, decision)}) + "\n")
    finally:
        bar.close()
        if stream is not sys.stdin.buffer:
            stream.close()
    if summary or err.isatty():
        counts.write(err)
    return 0


def _result(verdict: Verdict, decision: Decision) -> dict[str, Any]:
    """The fields `screen --jsonl` adds to each input line."""
    found = verdict.to_dict()
    decided = decision.to_dict()
    return {
        "categories": found["categories"],
        "severity": found["severity"],
        "actions": decided["actions"],
        "findings": found["findings"],
        "redacted": decided["redacted"],
    }


def read_jsonl(stream: BinaryIO) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """Yield (line number, record, error); a bad line is an error, never the end of the run."""
    for line_number, raw in enumerate(stream, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            yield line_number, None, f"invalid UTF-8 at byte {error.start}; line skipped"
            continue
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            yield (
                line_number,
                None,
                f"invalid JSON ({error.msg} at column {error.colno}); line skipped",
            )
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            yield line_number, None, 'expected an object with a "text" string; line skipped'
            continue
        yield line_number, record, None


def _count_lines(source: str) -> int | None:
    if source == "-":
        return None
    try:
        with Path(source).open("rb") as handle:
            return sum(1 for _ in handle)
    except OSError:
        return None
