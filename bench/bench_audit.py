"""Archive benchmark: append, verify and export rates for N records; the bot's write latency."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from bot.audit import Archive, AsyncArchive, Query, message_entry
from bot.audit.export import export
from bot.audit.keys import generate
from bot.domain import Action, Category, Decision, Finding, Message, Severity, Verdict

TEXT = (
    "客戶想買 0700.HK，target 450，HKID A123456(3)，電話 9123 4567 — typical 120-char chat line."
)
VERDICT = Verdict(
    (Finding("hkid", Category.PII, Severity.HIGH, 28, 38, 1.0, "checksum ok", "HKID", True),),
    (Category.PII,),
    Severity.HIGH,
    "bench",
)
DECISION = Decision(
    (Action.LOG, Action.WARN), "客戶想買 0700.HK，target 450，HKID A1*****(*)，電話 9*** ****"
)


def message(i: int) -> Message:
    return Message(
        id=f"m{i}",
        text=TEXT,
        conversation_id=f"cid{i % 20}",
        conversation_title="Equities desk",
        sender_id=f"staff{i % 50}",
        sender_name="Alice Chan",
        source="dingtalk",
    )


def percentile(values: list[float], share: float) -> float:
    return sorted(values)[min(len(values) - 1, int(share * len(values)))]


async def facade(path: Path, records: int, producers: int) -> tuple[float, list[float]]:
    """The bot's path: many concurrent awaits on AsyncArchive (group commit in one thread)."""
    writer = AsyncArchive(Archive(path, generate()))
    latencies: list[float] = []
    per_producer = records // producers

    async def produce(p: int) -> None:
        for i in range(per_producer):
            started = time.perf_counter()
            entry = message_entry(
                message(p * per_producer + i),
                VERDICT,
                DECISION,
                screened_at=time.time(),
                latency_ms=1.0,
            )
            await writer.record([entry])
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(produce(p) for p in range(producers)))
    seconds = time.perf_counter() - started
    await writer.aclose()
    return per_producer * producers / seconds, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000, help="records per transaction")
    parser.add_argument("--async-records", type=int, default=50_000)
    parser.add_argument("--producers", type=int, default=200, help="concurrent awaiting tasks")
    parser.add_argument("--single", type=int, default=500, help="one-record commits to time")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the files")
    parser.add_argument("--skip-export", action="store_true")
    args = parser.parse_args()
    ring = generate()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        path = Path(folder) / "bench.sqlite3"
        archive = Archive(path, ring)
        started = time.perf_counter()
        for first in range(0, args.records, args.batch):
            last = min(first + args.batch, args.records)
            archive.append(
                [
                    message_entry(
                        message(i), VERDICT, DECISION, screened_at=time.time(), latency_ms=1.0
                    )
                    for i in range(first, last)
                ]
            )
        append_seconds = time.perf_counter() - started
        archive.close()
        size = sum(p.stat().st_size for p in Path(folder).iterdir())
        with sqlite3.connect(path) as db:  # fold the WAL in, as a restart would
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = path.stat().st_size

        reader = Archive(path, ring, read_only=True)
        started = time.perf_counter()
        result = reader.verify()
        verify_seconds = time.perf_counter() - started
        assert result.ok, result.broken
        assert result.checked == args.records

        export_seconds = 0.0
        if not args.skip_export:
            started = time.perf_counter()
            with Path(os.devnull).open("w", encoding="utf-8") as sink:
                exported = export(reader, Query(), sink, "jsonl", show_progress=False)
            export_seconds = time.perf_counter() - started
            assert exported == args.records
        reader.close()

        facade_rate, latencies = asyncio.run(
            facade(Path(folder) / "facade.sqlite3", args.async_records, args.producers)
        )

        single = Archive(Path(folder) / "single.sqlite3", ring)
        single_latencies = []
        for i in range(args.single):
            started = time.perf_counter()
            single.append(
                [
                    message_entry(
                        message(i), VERDICT, DECISION, screened_at=time.time(), latency_ms=1.0
                    )
                ]
            )
            single_latencies.append(time.perf_counter() - started)
        single.close()

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"machine            {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, WAL + synchronous=FULL"
    )
    print(f"records            {args.records:,} ({len(TEXT)}-char flagged messages)")
    print(
        f"append             {args.records / append_seconds:,.0f} records/s "
        f"({append_seconds:.1f} s; seal + chain + commit, {args.batch} per transaction)"
    )
    print(
        f"verify             {args.records / verify_seconds:,.0f} records/s ({verify_seconds:.1f} s)"
    )
    if export_seconds:
        print(
            f"export (decrypt)   {args.records / export_seconds:,.0f} records/s "
            f"({export_seconds:.1f} s to JSONL)"
        )
    print(f"archive size       {size / 1e6:,.0f} MB ({size / args.records:,.0f} bytes/record)")
    print(
        f"bot write path     {facade_rate:,.0f} records/s with {args.producers} concurrent "
        f"awaits ({args.async_records:,} records); latency p50 "
        f"{statistics.median(latencies) * 1000:.1f} ms, p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
    )
    print(
        f"one per commit     {1 / statistics.mean(single_latencies):,.0f} records/s; latency p50 "
        f"{statistics.median(single_latencies) * 1000:.2f} ms, "
        f"p99 {percentile(single_latencies, 0.99) * 1000:.2f} ms (one fsync each)"
    )
    print(f"peak RSS           {rss:,.0f} MB")


if __name__ == "__main__":
    main()
