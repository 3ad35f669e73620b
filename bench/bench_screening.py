"""Screening speed: rules only, a tenfold lexicon, a naive regex, and the pipeline with NER."""

from __future__ import annotations

import os

# Before anything can import numpy/spaCy: one BLAS thread per process (15-20 % faster on 2 cores).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import cProfile
import importlib.util
import itertools
import multiprocessing
import platform
import pstats
import random
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import regex
import yaml
from corpus import ChatMessage, describe, generate

from bot.domain import Category
from bot.engine.matcher.deadline import Deadline
from bot.engine.rulebook.loader import load_rulebook
from bot.engine.screener import Screener

REPO = Path(__file__).resolve().parent.parent
STARTER_RULES = REPO / "rules"
FIXTURE_RULES = REPO / "tests" / "fixtures" / "rules"
WARMUP = 500
ROUNDS = 3  # passes over the corpus; the best one is reported (see measure)
TARGET_PLAIN = 10_000  # msgs/s, one core, no NER
TARGET_NER = 400  # msgs/s with NER
TARGET_NER_P99_MS = 10.0
TARGET_FULL = 500  # msgs/s with the intent model on every message (issue 8)
TARGET_FULL_P99_MS = 30.0


# -- helpers shared with bench_presidio.py --------------------------------------------------------
def pin_one_core() -> str:
    """Pin this process to core 0 when the OS allows it; say what happened."""
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {0})
        except OSError as error:
            return f"not pinned ({error})"
        return "pinned to core 0"
    return "not pinned (no sched_setaffinity)"


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (ru_maxrss is KB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def machine() -> str:
    """CPU model, core count, Python and OS, for the record."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def measure(
    fn: Callable[[str], object],
    texts: Sequence[str],
    warmup: int = WARMUP,
    rounds: int = ROUNDS,
) -> dict[str, Any]:
    """Throughput and per-message latency of ``fn`` over ``texts``, best of ``rounds`` passes.

    This machine is a shared 2-core VM: one pass can run at half speed because of a
    neighbour. The best pass is the figure for the code; the median pass is reported too.
    Latency percentiles are those of the best pass.
    """
    for text in texts[:warmup]:
        fn(text)
    passes = [_one_pass(fn, texts) for _ in range(rounds)]
    best = max(passes, key=lambda r: r["msgs_per_s"])
    speeds = sorted(r["msgs_per_s"] for r in passes)
    return {**best, "median_msgs_per_s": speeds[len(speeds) // 2], "rounds": rounds}


def _one_pass(fn: Callable[[str], object], texts: Sequence[str]) -> dict[str, Any]:
    clock = time.perf_counter_ns
    latencies = []
    started = clock()
    for text in texts:
        before = clock()
        fn(text)
        latencies.append(clock() - before)
    elapsed = clock() - started
    latencies.sort()
    return {
        "n": len(texts),
        "msgs_per_s": len(texts) / (elapsed / 1e9),
        "p50_us": latencies[len(latencies) // 2] / 1e3,
        "p99_us": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] / 1e3,
        "max_us": latencies[-1] / 1e3,
        "mean_us": elapsed / len(texts) / 1e3,
    }


def run_isolated(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run one configuration in a fresh process, so its memory figure is its own."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(fn, *args).result()


def fmt_speed(result: dict[str, Any]) -> str:
    """One line: msgs/s (best pass, median pass), p50, p99, max, peak RSS."""
    return (
        f"{result['msgs_per_s']:>8,.0f} msgs/s (median {result['median_msgs_per_s']:>7,.0f})   "
        f"p50 {result['p50_us']:>8,.1f} µs   "
        f"p99 {result['p99_us']:>8,.1f} µs   max {result['max_us']:>9,.1f} µs"
        + (f"   RSS {result['rss_mb']:>6.1f} MB" if result.get("rss_mb") else "")
    )


def names_available() -> bool:
    """Whether bot.engine.names (the name finder) exists yet."""
    return importlib.util.find_spec("bot.engine.names") is not None


def default_rules() -> Path:
    """rules/ once every category folder has a rule; the test fixtures until then."""
    folders = [STARTER_RULES / c.value for c in Category]
    if all(f.is_dir() and any(f.glob("*.yaml")) for f in folders):
        return STARTER_RULES
    return FIXTURE_RULES


# -- a tenfold lexicon ----------------------------------------------------------------------------
_SYNTHETIC: dict[tuple[str, str], tuple[list[str], list[str], list[str]]] = {
    ("advice", "en"): (
        ["sure-win", "no-lose", "locked-in", "bulletproof", "zero-risk", "can't-miss",
         "double-your-money", "insider", "risk-free", "rock-solid", "safe-bet", "moonshot",
         "ten-bagger", "sure-fire", "fail-safe"],
        ["yield", "payout", "upside", "profit", "coupon", "gain", "return", "income",
         "dividend", "alpha", "rebound", "rally"],
        ["plan", "scheme", "play", "deal", "pick", "note", "bet", "strategy", "tip", "call",
         "trade", "product"],
    ),
    ("advice", "zh"): (
        ["穩", "保", "包", "必", "零風險", "高息", "翻倍", "內幕", "無風險", "鐵定", "十拿九穩",
         "穩陣"],
        ["賺", "升", "回報", "收益", "派息", "獲利", "漲停", "暴漲", "翻身", "抄底"],
        ["計劃", "配置", "組合", "方案", "秘笈", "攻略", "產品", "良機", "牛股", "貼士", "消息",
         "機會"],
    ),
    ("pii", "en"): (
        ["client", "customer", "account holder", "beneficiary", "spouse", "director",
         "guarantor", "nominee", "authorised signatory", "joint holder"],
        ["passport", "home address", "date of birth", "tax id", "bank account",
         "driving licence", "mobile", "residential phone", "personal email", "salary",
         "id copy", "proof of address"],
        ["number", "no.", "details", "copy", "record", "scan", "photo"],
    ),
    ("pii", "zh"): (
        ["客戶", "戶主", "受益人", "配偶", "董事", "擔保人", "代理人", "聯名戶"],
        ["護照", "住址", "出生日期", "稅號", "銀行賬戶", "駕照", "手機號", "住宅電話", "私人郵箱",
         "薪金", "身份證副本", "地址證明"],
        ["號碼", "資料", "副本", "記錄", "掃描件", "照片", "詳情"],
    ),
    ("off_channel", "en"): (
        ["add me on", "ping me on", "move to", "switch to", "reach me on", "chat on",
         "call me via", "text me on", "dm me on", "let's use"],
        ["line", "kakaotalk", "viber", "skype", "imessage", "facetime", "snapchat", "discord",
         "zalo", "messenger", "qq", "weibo dm"],
        ["now", "tonight", "later", "instead", "after work", "privately", "offline"],
    ),
    ("off_channel", "zh"): (
        ["加我", "轉去", "用", "私下", "改用", "走", "我哋", "夜晚"],
        ["QQ", "Line", "Skype", "私人手機", "私人郵箱", "小號", "Signal", "臉書", "Viber",
         "Kakao"],
        ["聯絡", "詳談", "講", "傾", "溝通", "再講", "私聊", "對數"],
    ),
}  # fmt: skip
_SERIES = ["", " ii", " iii", " iv", " v", " vi", " vii", " viii", " ix", " x"]
_SERIES_ZH = ["", "二號", "三號", "四號", "五號", "六號", "七號", "八號", "九號", "十號"]


def _synthetic_terms(category: str, lang: str, seed: int) -> Iterator[str]:
    """Unique plausible phrases for one category and language, in a seeded order."""
    first, second, third = _SYNTHETIC[(category, lang)]
    combos = list(itertools.product(first, second, third))
    random.Random(f"{seed}-{category}-{lang}").shuffle(combos)
    joiner = " " if lang == "en" else ""
    for suffix in _SERIES if lang == "en" else _SERIES_ZH:
        for combo in combos:
            yield joiner.join(combo) + suffix


def expand_rules(source: Path, target: Path, factor: int, seed: int = 7) -> tuple[int, int]:
    """Copy ``source`` to ``target``, giving every rule with terms (factor-1)x more of them.

    Half of the new terms are English, half Chinese (Traditional; the engine folds both
    scripts). Returns the number of terms before and after.
    """
    shutil.copytree(source, target)
    rulebook = load_rulebook(source)
    seen = {term.casefold() for rule in rulebook.rules for term in rule.terms}
    streams = {key: _synthetic_terms(*key, seed) for key in _SYNTHETIC}
    before = after = 0
    for category in Category:
        for path in sorted((target / category.value).glob("*.yaml")):
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            terms = list(data.get("terms") or [])
            before += len(terms)
            wanted = len(terms) * (factor - 1)
            added: list[str] = []
            while len(added) < wanted:
                lang = "en" if len(added) % 2 == 0 else "zh"
                term = next(streams[(category.value, lang)])
                if term.casefold() not in seen:
                    seen.add(term.casefold())
                    added.append(term)
            if added:
                data["terms"] = terms + added
                path.write_text(
                    yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=200),
                    encoding="utf-8",
                )
            after += len(terms) + len(added)
    return before, after


def naive_alternation(terms: Sequence[str]) -> regex.Pattern[str]:
    """The slow path: every term in one flat alternation (Latin ends bounded), case-insensitive."""
    bounded = sorted(
        (t for t in terms if t[:1].isascii() or t[-1:].isascii()), key=len, reverse=True
    )
    anywhere = sorted((t for t in terms if t not in bounded), key=len, reverse=True)
    parts = []
    if bounded:
        parts.append(
            r"(?<![\p{Latin}\d])(?:" + "|".join(map(regex.escape, bounded)) + r")(?![\p{Latin}\d])"
        )
    if anywhere:
        parts.append("(?:" + "|".join(map(regex.escape, anywhere)) + ")")
    return regex.compile("|".join(parts), regex.IGNORECASE)


# -- configurations (each runs in its own process) ------------------------------------------------
def _corpus(n: int, seed: int) -> list[ChatMessage]:
    return generate(n, seed=seed)


def job_plain(rules_dir: str, n: int, seed: int, profile: bool) -> dict[str, Any]:
    """Full rule set, no NER: the target is 10,000 msgs/s on one core."""
    pinned = pin_one_core()
    messages = _corpus(n, seed)
    texts = [m.text for m in messages]
    started = time.perf_counter()
    screener = Screener.from_directory(Path(rules_dir), ner=False, intent=False)
    load_s = time.perf_counter() - started
    result = measure(screener.screen, texts)
    result.update(pinned=pinned, load_s=load_s, rss_mb=peak_rss_mb())
    result["rules"] = len(screener.rulebook.rules)
    result["terms"] = sum(len(r.terms) for r in screener.rulebook.rules)
    result["patterns"] = sum(len(r.patterns) for r in screener.rulebook.rules)
    result["literals"] = len(getattr(screener.lexicon, "_literals", ()))
    flagged: Counter[str] = Counter()
    labelled: Counter[str] = Counter()
    for message in messages:
        label = message.risk or "none"
        labelled[label] += 1
        verdict = screener.screen(message.text)
        if verdict.flagged:
            flagged[label] += 1
            for category in verdict.categories:
                flagged[f"{label}->{category.value}"] += 1
    result["flagged"] = dict(flagged)
    result["labelled"] = dict(labelled)
    if profile:
        result["profile"] = profile_screen(screener, texts)
    return result


def profile_screen(screener: Screener, texts: Sequence[str]) -> str:
    """cProfile of screening ``texts``: where the time goes, by own time and cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for text in texts:
        screener.screen(text)
    profiler.disable()
    stats = pstats.Stats(profiler)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    # Percentages are of the time inside Screener.screen (the profiler's own overhead excluded).
    total = max((v[3] for k, v in raw.items() if k[2] == "screen"), default=0.0) or 1.0

    def label(key: tuple[str, int, str]) -> str:
        file, line, func = key
        short = file.split("/bot/")[-1] if "/bot/" in file else Path(file).name
        return f"{short}:{line}({func})" if line else func

    lines = [f"profiled {len(texts):,} messages, {total:.2f} s of profiled time"]
    lines.append("  own time (tottime), top 20:")
    for key, value in sorted(raw.items(), key=lambda kv: -kv[1][2])[:20]:
        lines.append(f"    {value[2] / total:6.1%}  {value[1]:>9,} calls  {label(key)}")
    lines.append("  cumulative time, functions in bot/, top 20:")
    in_bot = [(k, v) for k, v in raw.items() if "/bot/" in k[0]]
    for key, value in sorted(in_bot, key=lambda kv: -kv[1][3])[:20]:
        lines.append(f"    {value[3] / total:6.1%}  {value[1]:>9,} calls  {label(key)}")
    lines.extend(regex_costs(screener, texts))
    return "\n".join(lines)


def regex_costs(screener: Screener, texts: Sequence[str]) -> list[str]:
    """Time spent in each rule regex (Deadline.finditer/search, by label), unprofiled."""
    spent: Counter[str] = Counter()
    runs: Counter[str] = Counter()
    original_finditer, original_search = Deadline.finditer, Deadline.search
    clock = time.perf_counter_ns

    def finditer(self: Any, pattern: Any, text: str, label: str, *args: Any) -> Any:
        before = clock()
        try:
            return original_finditer(self, pattern, text, label, *args)
        finally:
            spent[label] += clock() - before
            runs[label] += 1

    def search(self: Any, pattern: Any, text: str, label: str) -> Any:
        before = clock()
        try:
            return original_search(self, pattern, text, label)
        finally:
            spent[label] += clock() - before
            runs[label] += 1

    Deadline.finditer = finditer  # type: ignore[method-assign]
    Deadline.search = search  # type: ignore[method-assign]
    try:
        started = clock()
        for text in texts:
            screener.screen(text)
        elapsed = clock() - started
    finally:
        Deadline.finditer = original_finditer  # type: ignore[method-assign]
        Deadline.search = original_search  # type: ignore[method-assign]
    lines = [
        f"  regex time by rule/pattern (unprofiled run, {sum(spent.values()) / elapsed:.0%} "
        f"of screening time in {sum(runs.values()):,} regex runs), top 15:"
    ]
    for label, ns in spent.most_common(15):
        lines.append(
            f"    {ns / elapsed:6.1%}  ran on {runs[label] / len(texts):6.1%} of messages  "
            f"{ns / max(1, runs[label]) / 1e3:6.1f} µs/run  {label}"
        )
    return lines


def job_scaled(rules_dir: str, n: int, seed: int, factor: int) -> dict[str, Any]:
    """The corpus with every rule's term list grown ``factor`` times, against the original.

    Memory is taken with only the grown rule set loaded; then the original is loaded too
    and passes alternate (grown, original, grown, ...) so both see the same machine noise.
    """
    pinned = pin_one_core()
    texts = [m.text for m in _corpus(n, seed)]
    with tempfile.TemporaryDirectory(prefix="bench-rules-") as tmp:
        target = Path(tmp) / "rules"
        before, after = expand_rules(Path(rules_dir), target, factor)
        started = time.perf_counter()
        grown = Screener.from_directory(target, ner=False, intent=False)
        load_s = time.perf_counter() - started
    for text in texts[:WARMUP]:
        grown.screen(text)
    rss = peak_rss_mb()
    original = Screener.from_directory(Path(rules_dir), ner=False, intent=False)
    passes: dict[str, list[dict[str, Any]]] = {"grown": [], "original": []}
    for text in texts[:WARMUP]:
        original.screen(text)
    for _ in range(ROUNDS + 1):
        passes["grown"].append(_one_pass(grown.screen, texts))
        passes["original"].append(_one_pass(original.screen, texts))
    result: dict[str, Any] = {}
    for name, runs in passes.items():
        best = max(runs, key=lambda r: r["msgs_per_s"])
        speeds = sorted(r["msgs_per_s"] for r in runs)
        result[name] = {**best, "median_msgs_per_s": speeds[len(speeds) // 2], "rss_mb": rss}
    result["original"]["rss_mb"] = None  # not separable here; see configuration 1
    result.update(pinned=pinned, load_s=load_s, terms_before=before, terms_after=after)
    result["literals"] = len(getattr(grown.lexicon, "_literals", ()))
    return result


def job_naive(rules_dir: str, n: int, seed: int, factor: int) -> dict[str, Any]:
    """A flat `regex` alternation of every term (no normalisation, nothing else): the slow path."""
    pinned = pin_one_core()
    texts = [m.text for m in _corpus(n, seed)]
    with tempfile.TemporaryDirectory(prefix="bench-rules-") as tmp:
        source = Path(rules_dir)
        if factor > 1:
            source = Path(tmp) / "rules"
            expand_rules(Path(rules_dir), source, factor)
        terms = sorted({t for rule in load_rulebook(source).rules for t in rule.terms})
    started = time.perf_counter()
    pattern = naive_alternation(terms)
    compile_s = time.perf_counter() - started
    result = measure(pattern.findall, texts, warmup=100)
    result.update(pinned=pinned, load_s=compile_s, rss_mb=peak_rss_mb(), terms=len(terms))
    return result


def job_ner(rules_dir: str, n: int, seed: int, mode: str) -> dict[str, Any]:
    """With the name finder: ``realistic`` (NER only next to PII, as the screener does),
    ``worst`` (NER on every message as well as the rules) or ``find`` (NER alone)."""
    pinned = pin_one_core()
    from bot.engine.names import NameFinder  # noqa: PLC0415  (may not exist yet; heavy)

    messages = _corpus(n, seed)
    texts = [m.text for m in messages]
    rss_before = peak_rss_mb()
    started = time.perf_counter()
    finder = NameFinder.load()
    rulebook = load_rulebook(Path(rules_dir))
    load_s = time.perf_counter() - started
    with_ner = Screener(rulebook, names=finder)
    without = Screener(rulebook, lexicon=with_ner.lexicon)
    calls = Counter[str]()
    real_find = finder.find

    def counting_find(text: str) -> Any:
        calls["find"] += 1
        return real_find(text)

    if mode == "realistic":
        finder.find = counting_find  # type: ignore[method-assign]
        fn: Callable[[str], object] = with_ner.screen
    elif mode == "worst":

        def fn(text: str) -> object:
            verdict = without.screen(text)
            real_find(text)
            return verdict
    else:
        fn = real_find
    result = measure(fn, texts, warmup=min(WARMUP, 200))
    result.update(pinned=pinned, load_s=load_s, rss_mb=peak_rss_mb(), rss_before_mb=rss_before)
    screened = min(WARMUP, 200, len(texts)) + ROUNDS * len(texts)
    result["ner_share"] = calls["find"] / screened if calls else None
    result["status"] = getattr(finder, "status", "")
    return result


def job_full(rules_dir: str, n: int, seed: int, ner: bool) -> dict[str, Any]:
    """The screener as the bot runs it: rules, the intent model on every message, names."""
    pinned = pin_one_core()
    texts = [m.text for m in _corpus(n, seed)]
    rss_before = peak_rss_mb()
    started = time.perf_counter()
    screener = Screener.from_directory(Path(rules_dir), ner=ner)
    load_s = time.perf_counter() - started
    result = measure(screener.screen, texts, warmup=min(WARMUP, 200))
    result.update(pinned=pinned, load_s=load_s, rss_mb=peak_rss_mb(), rss_before_mb=rss_before)
    result["status"] = f"{screener.intent_status}; names: {screener.ner_status}"
    return result


# -- report ---------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run every configuration and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000, help="corpus size (no NER)")
    parser.add_argument("--ner-messages", type=int, default=3_000, help="corpus size with NER")
    parser.add_argument("--naive-messages", type=int, default=3_000, help="for the slow path")
    parser.add_argument("--rules", type=Path, default=None, help="rules dir (default: rules/)")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--factor", type=int, default=10, help="lexicon growth factor")
    parser.add_argument("--profile", action="store_true", help="cProfile the no-NER run")
    parser.add_argument("--skip-ner", action="store_true")
    args = parser.parse_args(argv)
    rules = str((args.rules or default_rules()).resolve())
    print(f"machine: {machine()}")
    print(f"rules:   {rules}")
    if Path(rules) != STARTER_RULES.resolve():
        print("         (not the starter rule set: the targets are set for rules/)")
    print(f"corpus:  {describe(_corpus(args.messages, args.seed))}")
    print("each configuration runs in its own process, pinned to one core; RSS = peak of it")
    print(
        f"msgs/s = best of {ROUNDS} passes (median pass in brackets); p50/p99 of the best pass\n"
    )

    plain = run_isolated(job_plain, rules, args.messages, args.seed, args.profile)
    print(
        f"1. rules only, no NER ({plain['rules']} rules, {plain['terms']} terms, "
        f"{plain['patterns']} patterns, {plain['literals']} prefilter literals; "
        f"{plain['pinned']}; loaded in {plain['load_s'] * 1e3:.0f} ms)"
    )
    print(f"   {fmt_speed(plain)}")
    verdict = "PASS" if plain["msgs_per_s"] >= TARGET_PLAIN else "MISS"
    print(f"   target >= {TARGET_PLAIN:,} msgs/s: {verdict}")
    labelled, flagged = plain["labelled"], plain["flagged"]
    shares = ", ".join(
        f"{label} {flagged.get(label, 0) / count:.0%} of {count}"
        for label, count in sorted(labelled.items())
    )
    print(f"   flagged by corpus label (a sanity check, not a quality measure): {shares}")
    if args.profile:
        print("   " + plain["profile"].replace("\n", "\n   "))

    scaled = run_isolated(job_scaled, rules, args.messages, args.seed, args.factor)
    print(
        f"\n2. lexicon x{args.factor}: {scaled['terms_before']} -> {scaled['terms_after']} terms, "
        f"{scaled['literals']} prefilter literals (loaded in {scaled['load_s']:.2f} s)"
    )
    print(f"   x{args.factor} terms: {fmt_speed(scaled['grown'])}")
    print(f"   x1 terms:  {fmt_speed(scaled['original'])}   (same process, alternating)")
    flat = scaled["grown"]["msgs_per_s"] / scaled["original"]["msgs_per_s"]
    flat_median = scaled["grown"]["median_msgs_per_s"] / scaled["original"]["median_msgs_per_s"]
    print(
        f"   throughput x{args.factor} terms / x1 terms: {flat:.2f} (best passes), "
        f"{flat_median:.2f} (median passes)"
    )
    naive1 = run_isolated(job_naive, rules, args.naive_messages, args.seed, 1)
    naive10 = run_isolated(job_naive, rules, args.naive_messages, args.seed, args.factor)
    print(f"   naive flat regex, {naive1['terms']} terms:   {fmt_speed(naive1)}")
    print(f"   naive flat regex, {naive10['terms']} terms: {fmt_speed(naive10)}")
    print(
        f"   naive x{args.factor} / x1: {naive10['msgs_per_s'] / naive1['msgs_per_s']:.2f}; "
        f"screener msgs/s / naive msgs/s at x{args.factor}: "
        f"{scaled['grown']['msgs_per_s'] / naive10['msgs_per_s']:.1f} "
        f"(the screener normalises and runs every rule; the naive regex only finds terms)"
    )

    for number, ner, title in (
        ("4a", False, "rules + intent model on every message"),
        ("4b", True, "the whole pipeline: rules + intent model + names (as the bot runs)"),
    ):
        if ner and args.skip_ner:
            continue
        result = run_isolated(job_full, rules, args.ner_messages, args.seed, ner)
        print(f"\n{number}. {title} ({result['status']}; loaded in {result['load_s']:.2f} s)")
        print(f"   {fmt_speed(result)}; RSS {result['rss_mb']:.0f} MB")
        ok = result["msgs_per_s"] >= TARGET_FULL and result["p99_us"] <= TARGET_FULL_P99_MS * 1e3
        target = f">= {TARGET_FULL} msgs/s and p99 <= {TARGET_FULL_P99_MS:.0f} ms"
        print(f"   target {target}: {'PASS' if ok else 'MISS'}")

    if args.skip_ner:
        return 0
    if not names_available():
        print("\n3. NER: bot.engine.names does not exist yet; skipped")
        return 0
    for number, mode, title in (
        ("3a", "realistic", "pipeline with NER, names looked for only next to PII findings"),
        ("3b", "worst", "worst case: rules + NameFinder.find on every message"),
        ("3c", "find", "NameFinder.find alone"),
    ):
        result = run_isolated(job_ner, rules, args.ner_messages, args.seed, mode)
        print(f"\n{number}. {title} ({result['status']}; loaded in {result['load_s']:.1f} s)")
        print(f"   {fmt_speed(result)}")
        if result["ner_share"] is not None:
            print(f"   NameFinder.find ran on {result['ner_share']:.1%} of messages")
        if mode != "find":
            ok = result["msgs_per_s"] >= TARGET_NER and result["p99_us"] <= TARGET_NER_P99_MS * 1e3
            print(
                f"   target >= {TARGET_NER} msgs/s and p99 <= {TARGET_NER_P99_MS:.0f} ms: "
                f"{'PASS' if ok else 'MISS'}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
