"""Archive benchmark: append rate (sealed + chained + committed) and verify rate for N records."""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from bot.audit.keys import generate
from bot.audit.store import Archive, seal
from bot.audit.writer import message_entry
from bot.domain import Message, Verdict

TEXT = (
    "客戶想買 0700.HK，target 450，HKID A123456(3)，電話 9123 4567 — typical 120-char chat line."
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument(
        "--batch", type=int, default=1000, help="records per transaction (group commit)"
    )
    args = parser.parse_args()
    ring = generate()
    verdict = Verdict((), (), None, (), TEXT, "bench")
    with tempfile.TemporaryDirectory() as folder:
        archive = Archive(Path(folder) / "bench.sqlite3", ring)
        started = time.perf_counter()
        for first in range(0, args.records, args.batch):
            entries = [
                message_entry(
                    Message(
                        id=f"m{i}",
                        text=TEXT,
                        conversation_id="cidDesk",
                        sender_id=f"staff{i % 50}",
                    ),
                    verdict,
                    screened_at=time.time(),
                    latency_ms=1.0,
                )
                for i in range(first, min(first + args.batch, args.records))
            ]
            archive.append_sealed([seal(e, ring) for e in entries])
        append_seconds = time.perf_counter() - started
        archive.close()
        size_mb = (Path(folder) / "bench.sqlite3").stat().st_size / 1e6
        reopened = Archive(Path(folder) / "bench.sqlite3", ring)
        started = time.perf_counter()
        checked, broken = reopened.verify()
        verify_seconds = time.perf_counter() - started
        assert broken is None, broken
        assert checked == args.records
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"records            {args.records:,} (batch {args.batch}, synchronous=FULL, WAL)")
    print(
        f"append             {args.records / append_seconds:,.0f} records/s ({append_seconds:.1f} s, seal + chain + commit)"
    )
    print(
        f"verify             {args.records / verify_seconds:,.0f} records/s ({verify_seconds:.1f} s)"
    )
    print(
        f"archive size       {size_mb:,.0f} MB ({size_mb * 1e6 / args.records:,.0f} bytes/record)"
    )
    print(f"peak RSS           {rss:,.0f} MB")


if __name__ == "__main__":
    main()
