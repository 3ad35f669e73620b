"""The command line: ``python -m bot screen | rules | eval | train | run | demo | ingest | audit``.

Each command lives in its own module with a ``register(subparsers)`` that adds its parser and
sets ``handler=`` to a function taking the parsed arguments and returning the exit status.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from bot.cli import audit, demo, evaluate, rules, run, screen, train
from bot.engine.rulebook.model import RulebookError

COMMANDS = (screen, rules, evaluate, train, run, demo, audit)


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
    for command in COMMANDS:
        command.register(sub)
    return parser
