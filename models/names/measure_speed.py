"""Measure NameFinder speed on ~2,000 mixed chat messages (not a test; figures go to README).

Run from the repository root:  python models/names/measure_speed.py [--no-spacy]
"""

from __future__ import annotations

import json
import random
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bot.engine.names import NameFinder  # noqa: E402  (after the path set-up above)

TEMPLATES = [
    "Client {en} HKID A123456(3) wants a call back",
    "{roman} mobile 9123 4567, please update",
    "Mr {surname} called about the margin call on 0388",
    "{zh}電話 9123 4567，佢想改地址",
    "客户{zh}的身份证号 110105194912310021",
    "{zh}生今日嚟開戶，文件齊晒",
    "Hang Seng down 200 points, Tencent and HSBC weak",
    "黃金價格上升，周末再傾",
    "恒指跌咗 400 點，好多人沽貨",
    "Closing auction imbalance on 0700.HK is big today",
]
EN = ["John Smith", "Peter Chan", "Mary Lee", "Sarah Johnson", "Kelvin Ho"]
ROMAN = ["Chan Tai Man", "Wong Siu Ming", "Lau Ka Yan", "CHAN, Tai Man", "Ng Chi-keung"]
SURNAMES = ["Wong", "Chan", "Lee", "Cheung", "Lau"]
ZH = ["陳大文", "黃小姐", "李", "張偉", "歐陽"]


def messages(count: int = 2000, seed: int = 7) -> list[str]:
    """The evaluation sets' messages, topped up with templated ones, in a fixed order."""
    texts = [
        json.loads(line)["text"]
        for path in sorted((REPO / "evals").glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    rng = random.Random(seed)
    while len(texts) < count:
        texts.append(
            rng.choice(TEMPLATES).format(
                en=rng.choice(EN),
                roman=rng.choice(ROMAN),
                surname=rng.choice(SURNAMES),
                zh=rng.choice(ZH),
            )
        )
    rng.shuffle(texts)
    return texts[:count]


def main() -> None:
    """Print messages/s, p50 and p99 for find() one at a time, then find_many()."""
    finder = NameFinder.load(use_spacy="--no-spacy" not in sys.argv)
    texts = messages()
    finder.find_many(texts[:200])  # warm-up: spaCy and jieba load lazily
    timings = []
    started = time.perf_counter()
    for text in texts:
        t0 = time.perf_counter()
        finder.find(text)
        timings.append(time.perf_counter() - t0)
    total = time.perf_counter() - started
    timings.sort()
    p99 = timings[int(len(timings) * 0.99) - 1]
    t0 = time.perf_counter()
    finder.find_many(texts)
    batch = time.perf_counter() - t0
    latin = [t for t in texts if finder.worth_spacy(t)]
    spacy_timings = []
    for text in latin:
        t0 = time.perf_counter()
        finder.find(text)
        spacy_timings.append(time.perf_counter() - t0)
    spacy_timings.sort()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(finder.status)
    print(f"{len(texts)} messages; {len(latin)} ({len(latin) / len(texts):.0%}) reach spaCy")
    print(
        f"find():      {len(texts) / total:,.0f} msg/s, "
        f"p50 {statistics.median(timings) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, "
        f"max {timings[-1] * 1000:.2f} ms"
    )
    if latin:
        print(
            f"find() on those only: {len(latin) / sum(spacy_timings):,.0f} msg/s, "
            f"p99 {spacy_timings[max(0, int(len(latin) * 0.99) - 1)] * 1000:.2f} ms"
        )
    print(f"find_many(): {len(texts) / batch:,.0f} msg/s; peak RSS {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
