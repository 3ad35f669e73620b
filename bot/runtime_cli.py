"""The `run` and `demo` commands, added to the CLI with :func:`register`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from bot.settings import ConfigError, load_settings


def register(subparsers: Any) -> None:
    """Add ``run`` and ``demo`` to ``python -m bot``."""
    run = subparsers.add_parser(
        "run",
        help="run the DingTalk bot (Stream mode, warnings, escalations)",
        description=(
            "Run the bot. Secrets and endpoints come from the environment "
            "(DINGTALK_CLIENT_ID, DINGTALK_CLIENT_SECRET, DINGTALK_OPENAPI_ENDPOINT, "
            "BOT_COMPLIANCE_CONVERSATION_ID, BOT_REDIS_URL, BOT_INGEST_TOKEN); everything else "
            "from a TOML file (--config or BOT_CONFIG; see docs/bot.md)."
        ),
    )
    run.add_argument("--config", type=Path, help="TOML settings file (default: BOT_CONFIG)")
    run.add_argument("--check", action="store_true", help="validate settings and rules, then exit")
    run.set_defaults(handler=cmd_run)

    demo = subparsers.add_parser(
        "demo",
        help="local DingTalk simulator + the bot + a scripted trading-group conversation",
    )
    demo.add_argument(
        "--pause", type=float, default=0.4, help="seconds between chat messages (default 0.4)"
    )
    demo.set_defaults(handler=cmd_demo)


def cmd_run(args: argparse.Namespace) -> int:
    """`run`: start the bot; a missing or wrong setting exits 2 naming it."""
    from bot.app import run  # noqa: PLC0415  (imports the SDK)
    from bot.ops import configure_logging  # noqa: PLC0415

    try:
        settings = load_settings(config_path=args.config)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    if args.check:
        from bot.rulebook import load_rulebook  # noqa: PLC0415

        rulebook = load_rulebook(settings.rules_dir)
        print(f"settings OK; rule set {rulebook.version} ({len(rulebook.rules)} rules)")
        return 0
    try:
        return asyncio.run(run(settings))
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2


def cmd_demo(args: argparse.Namespace) -> int:
    """`demo`: everything in one process, nothing to configure."""
    from bot.demo import run_demo  # noqa: PLC0415

    return asyncio.run(run_demo(pause=args.pause, out=sys.stdout))
