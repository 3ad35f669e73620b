"""`python -m bot train`: rebuild the intent model from the data, judge it, keep it only if better.

Top to bottom: read the team's data and the untuned test set (never trained on: any training
message whose text is in it is dropped), split train/dev by hash, add half of the ordinary
chat as negatives, fit, write a candidate, screen the dev set, the test set and the other half
of the ordinary chat with rules + candidate, compare with the model now shipped, and replace it
only when the candidate is at least as good on the test set (or ``force``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.engine.intent.features import FEATURE_VERSION
from bot.engine.intent.model import LABELS as MODEL_LABELS
from bot.engine.intent.model import IntentModel, IntentModelError, save_weights
from bot.engine.matcher.lexicon import Lexicon
from bot.engine.rulebook.loader import load_rulebook
from bot.engine.rulebook.model import Rulebook
from bot.engine.screener import Screener
from bot.training.data import (
    Labelled,
    OrdinaryParts,
    content_hash,
    ordinary_parts,
    read_directory,
    read_labelled,
    read_ordinary,
    split,
    without,
)
from bot.training.fit import FitSettings, Fitted, fit
from bot.training.measure import FalseAlarms, SetScore, false_alarms, score_set


@dataclass(frozen=True, slots=True)
class Plan:
    """Where everything is, and how to fit."""

    rules_dir: Path
    data_dir: Path
    test_set: Path
    model_dir: Path
    name: str
    ordinary: Path | None = None
    settings: FitSettings = field(default_factory=FitSettings)
    force: bool = False


@dataclass(frozen=True, slots=True)
class Judged:
    """One model's figures."""

    version: str
    dev: SetScore
    test: SetScore
    ordinary: FalseAlarms | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What training did."""

    candidate: Judged
    current: Judged | None
    written: bool
    reason: str
    counts: dict[str, int]


def train(plan: Plan, say: Callable[[str], None] = print) -> Outcome:
    """Run the whole build (see the module docstring)."""
    rulebook = load_rulebook(plan.rules_dir)
    lexicon = Lexicon(rulebook)

    def normalise(text: str) -> str:
        return lexicon.normalise(text).text

    test = read_labelled(plan.test_set)
    team = list(without(read_directory(plan.data_dir), [r.text for r in test]))
    train_set, dev_set = split(team)
    ordinary = _ordinary(plan.ordinary)
    ordinary_train, ordinary_measure = ordinary.train, ordinary.measure
    counts = {
        "team": len(team),
        "train": len(train_set),
        "dev": len(dev_set),
        "test": len(test),
        "ordinary_train": len(ordinary_train),
        "ordinary_measure": len(ordinary_measure),
    }
    say(f"data: {counts}")
    fitted = fit(train_set, ordinary_train, normalise, MODEL_LABELS, plan.settings)
    files = sorted(plan.data_dir.glob("*.jsonl"))
    meta = {
        "data_sha256": content_hash(files),
        "data_files": [p.name for p in files],
        "ordinary": plan.ordinary.name if plan.ordinary else None,
        "settings": plan.settings.to_dict(),
        "counts": counts,
    }
    with tempfile.TemporaryDirectory() as scratch:
        candidate_dir = Path(scratch)
        write_model(candidate_dir, plan.name, fitted, meta)
        candidate = IntentModel.load(candidate_dir, plan.name)
        judged = _judge(rulebook, candidate, dev_set, test, ordinary_measure)
        current = _current(plan, rulebook, dev_set, test, ordinary_measure)
        written, reason = _decide(judged, current, plan.force)
        if written:
            meta["metrics"] = _metrics(judged)
            write_model(plan.model_dir, plan.name, fitted, meta)
    return Outcome(judged, current, written, reason, counts)


def _ordinary(path: Path | None) -> OrdinaryParts:
    if path is None or not path.exists():
        return OrdinaryParts([], [], [])
    return ordinary_parts(read_ordinary(path))


def _judge(
    rulebook: Rulebook,
    model: IntentModel,
    dev: list[Labelled],
    test: list[Labelled],
    ordinary: list[str],
) -> Judged:
    screener = Screener(rulebook, intent=model)
    return Judged(
        model.version,
        score_set(screener, dev),
        score_set(screener, test),
        false_alarms(screener, ordinary) if ordinary else None,
    )


def _current(
    plan: Plan, rulebook: Rulebook, dev: list[Labelled], test: list[Labelled], ordinary: list[str]
) -> Judged | None:
    try:
        model = IntentModel.load(plan.model_dir, plan.name)
    except IntentModelError:
        return None
    return _judge(rulebook, model, dev, test, ordinary)


def _decide(candidate: Judged, current: Judged | None, force: bool) -> tuple[bool, str]:
    if current is None:
        return True, "no usable model yet"
    if candidate.version == current.version:
        return True, "the same model (rebuilt bit for bit)"
    if force:
        return True, "forced"
    new, old = candidate.test.macro_f1, current.test.macro_f1
    if new >= old:
        return True, f"test macro F1 {new:.4f} >= {old:.4f}"
    return False, f"refused: test macro F1 {new:.4f} < the current model's {old:.4f}"


def _metrics(judged: Judged) -> dict[str, Any]:
    out: dict[str, Any] = {"dev": judged.dev.to_dict(), "test": judged.test.to_dict()}
    if judged.ordinary is not None:
        out["ordinary_false_alarms_per_10k"] = round(judged.ordinary.per_10k, 2)
        out["ordinary_messages"] = judged.ordinary.messages
    return out


def write_model(directory: Path, name: str, fitted: Fitted, meta: dict[str, Any]) -> None:
    """Write ``<name>.npz`` and ``<name>.json``: the weights, and what they are."""
    directory.mkdir(parents=True, exist_ok=True)
    weights_path = directory / f"{name}.npz"
    partial = directory / f".{name}.npz.partial"
    digest = save_weights(partial, fitted.weights, fitted.bias)
    description = {
        "name": name,
        "kind": "linear over hashed unit n-grams (bot.engine.intent.features)",
        "labels": list(fitted.labels),
        "feature_version": FEATURE_VERSION,
        "sha256": digest,
        **meta,
    }
    text = json.dumps(description, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    # Weights first, description last: a crash in between leaves a mismatch that load refuses.
    shutil.move(partial, weights_path)
    (directory / f"{name}.json").write_text(text, encoding="utf-8")
