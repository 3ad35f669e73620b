"""End-to-end benchmark: frame pushed by the simulator -> warning received by the simulator.

Runs the real bot (real SDK, real screener, embedded SQLite state or Redis) against the
local DingTalk simulator and prints:

- latency: frames paced at --rate/s, each to its own group (so per-group rate limiting does
  not add its interval), time from the push to the warning arriving at the session webhook;
- throughput: --burst messages pushed as fast as the simulator can, time until every one is
  screened, recorded and acted on (sustained messages/s).

    python bench/bench_e2e.py                  # embedded state
    python bench/bench_e2e.py --redis redis://127.0.0.1:6379/15
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.audit import MemoryAuditTrail
from bot.infra.logs import configure_logging
from bot.runtime.lifecycle import Bot
from bot.runtime.settings import REPO, Settings
from bot.simulator import SimulatorThread, frame_data

RISKY = "客戶身份證號碼 K765432(4)，麻煩幫手開戶"
TEXTS = (
    RISKY,
    "Morning all, HSI futures up 0.8% overnight, watch the open.",
    "I would buy 0700.HK here, strong buy",
    "Thanks all, lunch at 12:30?",
    "Let's move this to WhatsApp, add me on 9876 5432",
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def settings_for(
    sim: SimulatorThread, data_dir: Path, redis_url: str | None, *, ner: bool = True
) -> Settings:
    return Settings(
        client_id=sim.client_id,
        client_secret=sim.client_secret,
        openapi_endpoint=sim.base_url,
        compliance_conversation_id="cidBenchCompliance==",
        redis_url=redis_url,
        key_prefix=f"bench-{uuid.uuid4().hex[:8]}",
        rules_dir=REPO / "rules",
        data_dir=data_dir,
        replica_id="bench",
        http_port=0,
        warn_interval_seconds=1.0,
        escalation_interval_seconds=1.0,
        rules_poll_seconds=3600,
        rules_ner=ner,
    )


async def latency(sim: SimulatorThread, bot: Bot, count: int, rate: float) -> list[float]:
    """Milliseconds from frame push to warning received, one group per message."""
    pushed: dict[str, float] = {}
    run = uuid.uuid4().hex[:6]  # fresh groups: a group warned a moment ago would be rate-limited

    def play() -> None:
        for n in range(count):
            conversation = f"cidBench{run}g{n}=="
            frame = sim.simulator.group_message_frame(conversation, RISKY)
            pushed[conversation] = time.time()
            sim.push_frame(frame)
            time.sleep(1 / rate)

    await asyncio.to_thread(play)
    deadline = time.monotonic() + 60
    while len(sim.session_replies()) < count and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    replies = [r for r in sim.session_replies() if r["conversation_id"] in pushed]
    return [(r["received_at"] - pushed[r["conversation_id"]]) * 1000 for r in replies]


async def throughput(sim: SimulatorThread, bot: Bot, count: int) -> tuple[float, float]:
    """(seconds to handle ``count`` messages, messages/s) for a burst into one group."""
    assert bot.pipeline is not None
    frames = [
        sim.simulator.group_message_frame(
            "cidBenchBurst==", TEXTS[n % len(TEXTS)], sender_staff_id=f"staff{n % 20}"
        )
        for n in range(count)
    ]
    ids = {frame_data(f)["msgId"] for f in frames}
    assert len(ids) == count
    start_handled = bot.pipeline.handled
    started = time.monotonic()

    def play() -> None:
        for frame in frames:
            sim.push_frame(frame)

    await asyncio.to_thread(play)
    pushed_in = time.monotonic() - started
    while bot.pipeline.handled - start_handled < count:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    elapsed = time.monotonic() - started
    print(f"  burst pushed in {pushed_in:.2f}s by the simulator", file=sys.stderr)
    return elapsed, count / elapsed


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis", help="BOT_REDIS_URL to use (default: embedded state)")
    parser.add_argument("--count", type=int, default=300, help="latency samples")
    parser.add_argument("--rate", type=float, default=50.0, help="latency pacing, messages/s")
    parser.add_argument("--burst", type=int, default=5000, help="throughput burst size")
    parser.add_argument("--no-ner", action="store_true", help="screen without name detection")
    args = parser.parse_args()
    configure_logging("ERROR")

    with tempfile.TemporaryDirectory() as tmp, SimulatorThread() as sim:
        settings = settings_for(sim, Path(tmp), args.redis, ner=not args.no_ner)
        bot = Bot(settings, archive=MemoryAuditTrail())
        await bot.start()
        try:
            assert bot.intake is not None
            await bot.intake.wait_connected(10)
            # Warm-up: first screen, token fetch, connections.
            await latency(sim, bot, 20, args.rate)
            samples = await latency(sim, bot, args.count, args.rate)
            elapsed, rate = await throughput(sim, bot, args.burst)
            metrics = bot.metrics
        finally:
            await bot.stop()

    mode = ("redis" if args.redis else "embedded (SQLite)") + (
        "" if not args.no_ner else ", no name detection"
    )
    result = {
        "mode": mode,
        "latency_samples": len(samples),
        "latency_ms_p50": round(statistics.median(samples), 1),
        "latency_ms_p99": round(percentile(samples, 99), 1),
        "latency_ms_max": round(max(samples), 1),
        "burst": args.burst,
        "burst_seconds": round(elapsed, 2),
        "sustained_messages_per_second": round(rate),
        "screened_total": int(metrics.sample("bot_screening_seconds_count")),
    }
    print(f"state: {mode}")
    print(
        f"frame pushed -> warning received: p50 {result['latency_ms_p50']} ms, "
        f"p99 {result['latency_ms_p99']} ms ({len(samples)} messages at {args.rate:g}/s)"
    )
    print(
        f"sustained: {args.burst} messages in {elapsed:.2f} s = {rate:,.0f} messages/s "
        "(screened, recorded, acted on)"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
