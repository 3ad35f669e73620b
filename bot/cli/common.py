"""What several commands share: engine options, loading a screener, archive errors as one line."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path

from bot.audit import ArchiveError, ArchiveKeyError
from bot.engine.resources import default_rules_dir
from bot.engine.screener import Screener

Handler = Callable[[argparse.Namespace], int]


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """``--rules DIR`` and ``--no-ner`` for commands that screen text."""
    parser.add_argument(
        "--rules",
        type=Path,
        default=default_rules_dir(),
        help="rules directory (default: BOT_RULES_DIR or %(default)s)",
    )
    parser.add_argument("--no-ner", action="store_true", help="skip name detection (spaCy)")
    parser.add_argument(
        "--no-model", action="store_true", help="rules only: skip the intent model"
    )


def load_screener(args: argparse.Namespace) -> Screener:
    """Build the screener the command asked for; says on stderr when names are not detected."""
    screener = Screener.from_directory(args.rules, ner=not args.no_ner, intent=not args.no_model)
    if screener.names is None and not args.no_ner:
        print("note: name detection unavailable; screening without it", file=sys.stderr)
    if screener.intent is None and not args.no_model and screener.policy.intent.model:
        print(f"note: {screener.intent_status}", file=sys.stderr)
    return screener


def guard(function: Handler) -> Handler:
    """Archive and key errors become one line on stderr and exit status 1, not a traceback."""

    @functools.wraps(function)
    def run(args: argparse.Namespace) -> int:
        try:
            return function(args)
        except (ArchiveError, ArchiveKeyError) as error:
            print(f"audit: {error}", file=sys.stderr)
            return 1
        except OSError as error:
            print(f"audit: {error.strerror or error}: {error.filename or ''}", file=sys.stderr)
            return 1

    return run
