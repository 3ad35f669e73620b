"""`run` (the DingTalk bot) and `ingest` (a JSON-lines file posted to a running bot)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp

from bot.engine.screener import Screener
from bot.infra.logs import configure_logging
from bot.runtime.lifecycle import run
from bot.runtime.settings import ConfigError, load_settings


def register(subparsers: Any) -> None:
    """Add ``run`` and ``ingest``."""
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

    ingest = subparsers.add_parser(
        "ingest",
        help="send a JSON-lines file (the `screen --jsonl` format) to a running bot",
        description=(
            "Post FILE to the bot's POST /v1/messages in batches, so messages DingTalk never "
            "delivered to the bot (an archive export) go through the same pipeline. The token "
            "comes from BOT_INGEST_TOKEN."
        ),
    )
    ingest.add_argument("file", type=Path, help='JSON lines {"id", "text", ...}')
    ingest.add_argument(
        "--url", default="http://127.0.0.1:8080", help="the bot's HTTP address (%(default)s)"
    )
    ingest.add_argument("--batch", type=int, default=500, help="messages per request (max 1000)")
    ingest.set_defaults(handler=cmd_ingest)


def cmd_run(args: argparse.Namespace) -> int:
    """`run`: start the bot; a missing or wrong setting exits 2 naming it."""
    try:
        settings = load_settings(config_path=args.config)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    if args.check:
        screener = Screener.from_directory(settings.rules_dir, ner=False)
        rules = f"rule set {screener.rules_version} ({len(screener.rulebook.rules)} rules)"
        print(f"settings OK; {rules}; {screener.intent_status}")
        return 0
    try:
        return asyncio.run(run(settings))
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2


def cmd_ingest(args: argparse.Namespace) -> int:
    """`ingest`: post a JSON-lines file; bad lines are reported with their line numbers."""
    token = os.environ.get("BOT_INGEST_TOKEN", "")
    if not token:
        print("configuration error: BOT_INGEST_TOKEN: is required", file=sys.stderr)
        return 2
    if not 1 <= args.batch <= 1000:
        print("--batch must be between 1 and 1000", file=sys.stderr)
        return 2
    return asyncio.run(_ingest(args.file, args.url.rstrip("/"), token, args.batch))


async def _ingest(path: Path, url: str, token: str, size: int) -> int:
    batches: list[list[tuple[int, Any]]] = [[]]
    bad = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                print(f"{path}:{number}: invalid JSON; line skipped", file=sys.stderr)
                bad += 1
                continue
            if len(batches[-1]) == size:
                batches.append([])
            batches[-1].append((number, record))
    accepted = 0
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        for batch in batches:
            if not batch:
                continue
            body = {"messages": [record for _, record in batch]}
            for _ in range(30):  # 503 (queue full, shutting down): wait and resend
                async with http.post(f"{url}/v1/messages", json=body, headers=headers) as answer:
                    result = await answer.json(content_type=None)
                    if answer.status != 503:
                        break
                    await asyncio.sleep(float(answer.headers.get("Retry-After", "5")))
            if answer.status not in (202, 400):
                print(f"ingest failed: HTTP {answer.status} {result}", file=sys.stderr)
                return 1
            accepted += int(result.get("accepted", 0))
            for item in result.get("rejected", []):
                line = batch[int(item["index"])][0]
                print(f"{path}:{line}: {item['error']}; line skipped", file=sys.stderr)
                bad += 1
    print(f"{accepted} messages queued, {bad} lines skipped")
    return 0 if not bad else 1
