"""The command line: ``python -m bot screen | rules | eval | run | demo | audit``."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from bot.cli.render import Summary, dumps, render_explanation, render_verdict, verdict_json
from bot.domain import Message
from bot.engine.resources import PROJECT_ROOT, default_rules_dir
from bot.engine.rulebook import RulebookError
from bot.engine.screener import Screener

DEFAULT_RULES = default_rules_dir()
# Feature packages that add their own commands with register(subparsers).
_PLUGINS = ("bot.cli.run", "bot.cli.audit")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the chosen command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("BOT_LOG_LEVEL", "WARNING"),
        format="%(levelname)s %(name)s: %(message)s",
    )
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except RulebookError as error:
        print(f"rules cannot be loaded:\n{error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command registered."""
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    screen = sub.add_parser("screen", help="screen messages given as arguments or JSON lines")
    screen.add_argument("texts", nargs="*", metavar="TEXT", help="messages to screen")
    screen.add_argument(
        "--jsonl", metavar="FILE", help='JSON lines {"id", "text", ...}; "-" for stdin'
    )
    _add_engine_options(screen)
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

    rules = sub.add_parser("rules", help="check or explain the rule set").add_subparsers(
        title="rules commands", metavar="COMMAND"
    )
    check = rules.add_parser("check", help="validate rule files and run their examples")
    check.add_argument("directory", nargs="?", type=Path, default=DEFAULT_RULES)
    check.add_argument(
        "--min-examples",
        type=int,
        default=1,
        help="examples of each kind every rule needs (default 1)",
    )
    check.set_defaults(handler=cmd_rules_check)
    explain = rules.add_parser("explain", help="show how a message is normalised and scored")
    explain.add_argument("text")
    _add_engine_options(explain)
    explain.set_defaults(handler=cmd_rules_explain)

    evaluate = sub.add_parser("eval", help="precision and recall per category on a labelled set")
    evaluate.add_argument(
        "file",
        nargs="?",
        type=Path,
        default=PROJECT_ROOT / "evals" / "messages.jsonl",
    )
    evaluate.add_argument("--errors", action="store_true", help="list every misclassified message")
    _add_engine_options(evaluate)
    evaluate.set_defaults(handler=cmd_eval)

    for module_name in _PLUGINS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name is None or not module_name.startswith(error.name):
                raise
            continue
        module.register(sub)
    return parser


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rules", type=Path, default=DEFAULT_RULES, help="rules directory (default: %(default)s)"
    )
    parser.add_argument("--no-ner", action="store_true", help="skip name detection (spaCy)")


def load_screener(args: argparse.Namespace) -> Screener:
    """Build the screener the command asked for; says on stderr when names are not detected."""
    screener = Screener.from_directory(args.rules, ner=not args.no_ner)
    if screener.names is None and not args.no_ner:
        print("note: name detection unavailable; screening without it", file=sys.stderr)
    return screener


# -- screen ---------------------------------------------------------------------------------
def cmd_screen(args: argparse.Namespace) -> int:
    """`screen`: verdicts for arguments (readable) or a JSON-lines file (JSON lines out)."""
    if not args.texts and not args.jsonl:
        print("give messages to screen, or --jsonl FILE (- for stdin)", file=sys.stderr)
        return 2
    screener = load_screener(args)
    archive = _open_archive() if args.archive else None
    try:
        if args.jsonl:
            return _screen_jsonl(
                screener, args.jsonl, sys.stdout, sys.stderr, summary=args.summary, archive=archive
            )
        for index, text in enumerate(args.texts):
            verdict = screener.screen(text)
            if archive is not None:
                archive(
                    Message(id=f"cli-{time.time_ns()}-{index}", text=text, source="cli"), verdict
                )
            print(render_verdict(text, verdict))
            print()
        return 0
    finally:
        if archive is not None:
            archive.close()


def _open_archive() -> Any:
    """The audit archive writer for `screen --archive` (see bot.audit)."""
    return importlib.import_module("bot.cli.audit").open_archive_for_cli()


def _screen_jsonl(
    screener: Screener,
    source: str,
    out: TextIO,
    err: TextIO,
    *,
    summary: bool = False,
    archive: Any = None,
) -> int:
    stream: BinaryIO = sys.stdin.buffer if source == "-" else Path(source).open("rb")  # noqa: SIM115
    total = _count_lines(source)
    progress = _Progress(err, total) if err.isatty() else None
    counts = Summary()
    try:
        for line_number, record, error in _read_jsonl(stream):
            if error is not None:
                counts.errors += 1
                err.write(f"{source}:{line_number}: {error}\n")
                continue
            assert record is not None  # noqa: S101
            verdict = screener.screen(record["text"])
            counts.add(verdict)
            if archive is not None:
                archive(
                    Message(
                        id=str(record.get("id", line_number)), text=record["text"], source="file"
                    ),
                    verdict,
                )
            out.write(dumps({**record, "id": record.get("id"), **verdict_json(verdict)}) + "\n")
            if progress is not None:
                progress.update(line_number)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    if progress is not None:
        progress.close()
    if summary or err.isatty():
        counts.write(err)
    return 0


def _read_jsonl(stream: BinaryIO) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
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


class _Progress:
    """A one-line progress bar on a terminal's stderr."""

    def __init__(self, err: TextIO, total: int | None) -> None:
        self.err = err
        self.total = total
        self.started = time.monotonic()
        self.last = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.1:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        if self.total:
            filled = int(30 * done / self.total)
            self.err.write(
                f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total} {rate:,.0f} msg/s"
            )
        else:
            self.err.write(f"\r{done} lines {rate:,.0f} msg/s")
        self.err.flush()

    def close(self) -> None:
        self.err.write("\n")


# -- rules ----------------------------------------------------------------------------------
def cmd_rules_check(args: argparse.Namespace) -> int:
    """`rules check`: every problem as file:line, exit 1 on any."""
    from bot.engine.rulecheck import check_directory  # noqa: PLC0415

    rulebook, problems, examples = check_directory(args.directory, min_examples=args.min_examples)
    for problem in problems:
        print(problem)
    if rulebook is None:
        print(
            f"\nFAILED: rule set in {args.directory} cannot be loaded ({len(problems)} problems)"
        )
        return 1
    status = "FAILED" if problems else "OK"
    print(
        f"{status}: {len(rulebook.rules)} rules, {examples} examples, {len(problems)} problems "
        f"(rule set version {rulebook.version})"
    )
    return 1 if problems else 0


def cmd_rules_explain(args: argparse.Namespace) -> int:
    """`rules explain`: the normalised text and every hit with its score and reasons."""
    screener = load_screener(args)
    print(render_explanation(args.text, screener.explain(args.text), screener.ner_status))
    return 0


# -- eval -----------------------------------------------------------------------------------
def cmd_eval(args: argparse.Namespace) -> int:
    """`eval`: precision and recall per category against a labelled JSON-lines set."""
    from bot.engine.evaluate import evaluate_file  # noqa: PLC0415

    screener = load_screener(args)
    report = evaluate_file(screener, args.file)
    print(report.render(show_errors=args.errors))
    return 0
