"""`demo`: the local DingTalk simulator, the bot (embedded state), a scripted trading-group chat.

The one product module that imports the simulator (checked by the import contracts).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bot.audit import MemoryAuditTrail
from bot.engine.resources import default_rules_dir
from bot.runtime.lifecycle import Bot
from bot.runtime.pipeline import Pipeline
from bot.runtime.settings import Settings
from bot.simulator import SimulatorThread

DESK = "cidHKDeskEquities=="
DESK_TITLE = "HK Desk - Equities"
COMPLIANCE = "cidComplianceHK=="
WARN_INTERVAL = 1.0
ESCALATION_INTERVAL = 0.5


@dataclass(frozen=True, slots=True)
class Line:
    """One scripted chat message (or a redelivery of an earlier one)."""

    sender: str
    staff_id: str
    text: str
    note: str = ""
    redeliver_of: int | None = None  # index of an earlier line DingTalk delivers again


SCRIPT = (
    Line("Alice Chan", "staff001", "早晨！今日開市前會議 9:15 照舊。", "clean chatter"),
    Line("Bob Lee", "staff002", "Morning all, HSI futures up 0.8% overnight, watch the open."),
    Line("Frank Ho", "staff006", "I would buy 0700.HK here, strong buy", "advice"),
    Line(
        "Dave Wong",
        "staff004",
        "客戶身份證號碼 K765432(4)，電話 9123 4567，麻煩幫手開戶。",
        "personal data",
    ),
    Line(
        "Carol Lam", "staff003", "Let's move this to WhatsApp, add me on 9876 5432", "off-channel"
    ),
    Line("Frank Ho", "staff006", "落實買入 0700，目標價 400", "advice again"),
    Line(
        "Frank Ho", "staff006", "You should sell 9988 now before it drops", "third strike: repeat"
    ),
    Line("", "", "", "DingTalk delivers the personal-data message again", redeliver_of=3),
    Line("Alice Chan", "staff001", "Thanks all, lunch at 12:30?", "clean chatter"),
)
BURST = tuple(
    Line("Gary Chow", "staff007", text, "burst")
    for text in (
        "Buy 3690 today, target 150",
        "食藥 0388 買入",
        "I would buy 0700.HK here, strong buy",
        "You should sell 9988 now before it drops",
        "落實買入 0700，目標價 400",
    )
)


def register(subparsers: Any) -> None:
    """Add ``demo``."""
    demo = subparsers.add_parser(
        "demo",
        help="local DingTalk simulator + the bot + a scripted trading-group conversation",
    )
    demo.add_argument(
        "--pause", type=float, default=0.4, help="seconds between chat messages (default 0.4)"
    )
    demo.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """`demo`: everything in one process, nothing to configure."""
    return asyncio.run(run_demo(pause=args.pause, out=sys.stdout))


def demo_settings(sim: SimulatorThread, data_dir: Path) -> Settings:
    """Settings for a bot talking to the simulator with embedded state."""
    return Settings(
        client_id=sim.client_id,
        client_secret=sim.client_secret,
        openapi_endpoint=sim.base_url,
        compliance_conversation_id=COMPLIANCE,
        rules_dir=default_rules_dir(),
        data_dir=data_dir,
        replica_id="demo",
        http_port=0,
        warn_interval_seconds=WARN_INTERVAL,
        escalation_interval_seconds=ESCALATION_INTERVAL,
        rules_poll_seconds=3600,
        drain_seconds=5,
    )


class _Printer:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.started = time.time()

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def block(self, text: str, indent: str) -> None:
        for row in text.splitlines():
            if row.strip():
                self.line(f"{indent}│ {row}")


async def run_demo(*, pause: float, out: TextIO) -> int:
    """Play the script and print what the bot did, with timings."""
    logging.getLogger().setLevel(logging.ERROR)
    printer = _Printer(out)
    with tempfile.TemporaryDirectory() as tmp, SimulatorThread() as sim:
        bot = Bot(demo_settings(sim, Path(tmp)), archive=MemoryAuditTrail())
        await bot.start()
        try:
            assert bot.intake is not None  # noqa: S101
            assert bot.pipeline is not None  # noqa: S101
            await bot.intake.wait_connected(10)
            version = bot.rules.current.version if bot.rules else "?"
            printer.line(
                "DingTalk compliance bot: demo (local DingTalk simulator, embedded state, "
                f"rule set {version})"
            )
            printer.line(f"Group: {DESK_TITLE} ({DESK}); compliance group: {COMPLIANCE}")
            printer.line("")
            await _play(sim, bot, printer, pause)
            _summary(sim, bot, printer)
        finally:
            await bot.stop()
    return 0


async def _play(sim: SimulatorThread, bot: Bot, printer: _Printer, pause: float) -> None:
    assert bot.pipeline is not None  # noqa: S101
    pipeline = bot.pipeline
    ids: list[str] = []
    last_warning = 0.0
    seen_replies = seen_escalations = 0
    for line in (*SCRIPT, None):
        if line is None:
            printer.line("── a burst: five risky messages within a second ──")
            await asyncio.sleep(max(pause, last_warning + WARN_INTERVAL - time.time()))
            burst_started = time.time()
            expected = pipeline.finished + len(BURST)
            for item in BURST:
                ids.append(await _push(sim, item))
                printer.line(f"  {item.sender}: {item.text}")
            await _wait_finished(pipeline, expected, 15)
            seen_replies, seen_escalations = _report(
                sim, printer, burst_started, seen_replies, seen_escalations
            )
            continue
        await asyncio.sleep(max(pause, last_warning + WARN_INTERVAL - time.time()))
        expected = pipeline.finished + 1
        pushed_at = time.time()
        if line.redeliver_of is not None:
            ids.append(await _push(sim, SCRIPT[line.redeliver_of], ids[line.redeliver_of]))
            printer.line(f"[{pushed_at - printer.started:5.1f}s] ({line.note})")
        else:
            ids.append(await _push(sim, line))
            label = f"  <- {line.note}" if line.note else ""
            printer.line(
                f"[{pushed_at - printer.started:5.1f}s] {line.sender}: {line.text}{label}"
            )
        await _wait_finished(pipeline, expected, 10)
        before = seen_replies
        seen_replies, seen_escalations = _report(
            sim, printer, pushed_at, seen_replies, seen_escalations
        )
        if seen_replies > before:
            last_warning = time.time()


async def _push(sim: SimulatorThread, line: Line, msg_id: str | None = None) -> str:
    """Push ``line`` to the desk group (``msg_id``: DingTalk delivers an earlier one again)."""
    message_id: str = await asyncio.to_thread(
        sim.push_group_message,
        DESK,
        line.text,
        sender_nick=line.sender,
        sender_staff_id=line.staff_id,
        conversation_title=DESK_TITLE,
        msg_id=msg_id,
    )
    return message_id


async def _wait_finished(pipeline: Pipeline, count: int, limit: float) -> None:
    """Until the pipeline has released ``count`` queue items, or ``limit`` seconds pass."""
    deadline = time.monotonic() + limit
    while pipeline.finished < count and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)


def _report(
    sim: SimulatorThread, printer: _Printer, since: float, seen_replies: int, seen_escalations: int
) -> tuple[int, int]:
    replies = sim.session_replies(DESK)
    escalations = sim.group_messages(COMPLIANCE)
    new_replies = replies[seen_replies:]
    new_escalations = escalations[seen_escalations:]
    if not new_replies and not new_escalations:
        printer.line("         no action")
    for reply in new_replies:
        delay = (reply["received_at"] - since) * 1000
        printer.line(f"         ⚠ warning in the group, {delay:.0f} ms after the message:")
        printer.block(reply["markdown"]["text"], "           ")
    for sent in new_escalations:
        delay = (sent["received_at"] - since) * 1000
        printer.line(f"         🚨 escalation to the compliance group, {delay:.0f} ms after:")
        printer.block(sent["param"]["text"], "           ")
    return len(replies), len(escalations)


def _summary(sim: SimulatorThread, bot: Bot, printer: _Printer) -> None:
    assert bot.pipeline is not None  # noqa: S101
    metrics = bot.metrics
    printer.line("")
    printer.line("Summary")
    printer.line(
        f"  messages received {metrics.total('bot_messages_received_total'):.0f}, screened "
        f"{metrics.total('bot_messages_screened_total'):.0f} "
        f"(flagged {metrics.sample('bot_messages_screened_total', outcome='flagged'):.0f}), "
        f"duplicates skipped {metrics.total('bot_duplicate_messages_total'):.0f}"
    )
    printer.line(
        f"  warnings posted {len(sim.session_replies(DESK))}, "
        f"escalation messages {len(sim.group_messages(COMPLIANCE))}, "
        f"frames ACKed {len(sim.acks())}"
    )
    archive = bot.archive
    if isinstance(archive, MemoryAuditTrail):
        printer.line(
            f"  audit records: {len(archive.messages)} messages, {len(archive.actions)} actions"
        )
    printer.line("  run it for real: python -m bot run (see docs/bot.md)")
