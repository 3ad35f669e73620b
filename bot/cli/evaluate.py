"""`eval`: precision and recall per category on a labelled JSON-lines set."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bot.cli.common import add_engine_options, load_screener
from bot.engine.evaluate import evaluate_file
from bot.engine.resources import PROJECT_ROOT


def register(subparsers: Any) -> None:
    """Add ``eval``."""
    evaluate = subparsers.add_parser(
        "eval", help="precision and recall per category on a labelled set"
    )
    evaluate.add_argument(
        "file", nargs="?", type=Path, default=PROJECT_ROOT / "evals" / "messages.jsonl"
    )
    evaluate.add_argument("--errors", action="store_true", help="list every misclassified message")
    add_engine_options(evaluate)
    evaluate.set_defaults(handler=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    """`eval`: precision and recall per category against a labelled JSON-lines set."""
    screener = load_screener(args)
    report = evaluate_file(screener, args.file)
    print(report.render(show_errors=args.errors))
    return 0
