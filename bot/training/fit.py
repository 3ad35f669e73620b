"""Fitting the linear intent model: hashed features, one NB-weighted logistic regression each.

Each category's logistic regression sees the features scaled by their naive-Bayes log-count
ratio (how much more often a feature occurs in that category's messages than elsewhere): with
ten thousand messages in five languages this generalises better than plain logistic
regression (measured in bench/bench_intent.py). The product of ratio and coefficient is again
one weight per feature, so the run-time model stays a plain linear model.

Deterministic: the same data and settings give the same weights (liblinear with a fixed seed,
data in file order), so `python -m bot train` rebuilds the shipped model bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bot.domain import Category
from bot.engine.intent.features import HASH_SIZE, extract
from bot.engine.intent.model import REPORTED
from bot.training.data import REPORTED_INTENTS, Labelled

SEED = 20261201


@dataclass(frozen=True, slots=True)
class FitSettings:
    """What the fit may vary; recorded in the model's description."""

    c: float = 16.0  # inverse regularisation strength
    ordinary_weight: float = 1.0  # weight of one ordinary-chat negative against one team message
    positive_weight: float = 2.0  # misses cost fines; false alarms cost minutes
    smoothing: float = 0.5  # added to feature counts in the naive-Bayes ratio

    def to_dict(self) -> dict[str, float]:
        """For the model description."""
        return {
            "c": self.c,
            "ordinary_weight": self.ordinary_weight,
            "positive_weight": self.positive_weight,
            "smoothing": self.smoothing,
        }


@dataclass(frozen=True, slots=True)
class Fitted:
    """Weights for every category, in the runtime model's layout."""

    labels: tuple[str, ...]
    weights: npt.NDArray[np.float32]  # (HASH_SIZE, len(labels))
    bias: npt.NDArray[np.float32]


def design(texts: Sequence[str], normalise: Callable[[str], str]) -> Any:
    """One row per message: its first window's features, valued 1/sqrt(count) (as at run time)."""
    rows, owner = window_rows(texts, normalise)
    first = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    return rows[first]


def window_rows(texts: Sequence[str], normalise: Callable[[str], str]) -> tuple[Any, Any]:
    """Every window of every message as a row, and which message each row belongs to."""
    from scipy import sparse  # noqa: PLC0415  (heavy, training only; the bot never loads it)

    indptr: list[int] = [0]
    indices: list[int] = []
    values: list[float] = []
    owner: list[int] = []
    for number, text in enumerate(texts):
        for window in extract(normalise(text)).windows:
            scale = 1.0 / math.sqrt(len(window.indices))
            indices.extend(window.indices)
            values.extend([scale] * len(window.indices))
            indptr.append(len(indices))
            owner.append(number)
    matrix = sparse.csr_matrix(
        (np.asarray(values, dtype=np.float64), np.asarray(indices), np.asarray(indptr)),
        shape=(len(owner), HASH_SIZE),
    )
    return matrix, np.asarray(owner)


def fit(
    team: Sequence[Labelled],
    ordinary: Sequence[str],
    normalise: Callable[[str], str],
    labels: Sequence[str],
    settings: FitSettings,
) -> Fitted:
    """Fit one logistic regression per label over the team's messages and ordinary chat.

    A category's label comes from ``labels`` of the record; ``reported`` from its intent
    (report, warn, policy, question). Ordinary chat has no intents, so it is left out of the
    ``reported`` fit rather than taught as "not reported".

    A long message is several windows, and at run time its strongest window counts. Every
    window of a negative message is a negative; for a positive only the window that carries
    the cue should be, and which one is not written down: a first fit spreads the message's
    weight over its windows, a second fit keeps the window the first one scored highest
    (multiple-instance learning in two passes; chat-sized messages have one window anyway).
    """
    rows, owner = window_rows([r.text for r in team] + list(ordinary), normalise)
    present = (rows > 0).astype(np.float64)
    counts = np.bincount(owner)
    weights = np.zeros((HASH_SIZE, len(labels)), dtype=np.float32)
    bias = np.zeros(len(labels), dtype=np.float32)
    for column, label in enumerate(labels):
        target, sample = _targets(team, len(ordinary), label, settings)
        row_target, row_weight = target[owner], sample[owner] / counts[owner]
        used = row_weight > 0
        if row_target[used].all() or not row_target[used].any():
            # Nothing to tell apart (no example of one side): the model never flags it.
            bias[column] = np.float32(-20.0)
            continue
        coef, intercept = _fit_rows(rows, present, row_target, row_weight, used, settings)
        long_positive = row_target & (counts[owner] > 1)
        if long_positive.any():
            scores = rows @ coef
            keep = _best_windows(scores, owner, long_positive)
            row_weight = np.where(long_positive, np.where(keep, sample[owner], 0.0), row_weight)
            used = row_weight > 0
            coef, intercept = _fit_rows(rows, present, row_target, row_weight, used, settings)
        weights[:, column] = coef.astype(np.float32)
        bias[column] = np.float32(intercept)
    return Fitted(tuple(labels), weights, bias)


def _fit_rows(
    rows: Any,
    present: Any,
    target: npt.NDArray[np.bool_],
    weight: npt.NDArray[np.float64],
    used: npt.NDArray[np.bool_],
    settings: FitSettings,
) -> tuple[npt.NDArray[np.float64], float]:
    """NB-LR on the ``used`` rows: (one weight per feature, intercept)."""
    from scipy import sparse  # noqa: PLC0415  (training only)
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415  (training only)

    ratio = _nb_ratio(present[used], target[used], settings.smoothing)
    model = LogisticRegression(C=settings.c, solver="liblinear", random_state=SEED, max_iter=2000)
    model.fit(rows[used] @ sparse.diags(ratio), target[used], sample_weight=weight[used])
    return model.coef_[0] * ratio, float(model.intercept_[0])


def _best_windows(
    scores: npt.NDArray[np.float64], owner: npt.NDArray[np.int64], among: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """For each message with rows in ``among``, True on its highest-scoring row."""
    keep = np.zeros(len(scores), dtype=bool)
    best: dict[int, int] = {}
    for row in np.flatnonzero(among):
        message = int(owner[row])
        if message not in best or scores[row] > scores[best[message]]:
            best[message] = int(row)
    keep[list(best.values())] = True
    return keep


def _targets(
    team: Sequence[Labelled], ordinary: int, label: str, settings: FitSettings
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
    """(target, sample weight) for one label over team messages then ordinary chat."""
    if label == REPORTED:
        team_target = [r.intent in REPORTED_INTENTS for r in team]
        ordinary_weight = 0.0
    else:
        category = Category(label)
        team_target = [r.has(category) for r in team]
        ordinary_weight = settings.ordinary_weight
    target = np.array(team_target + [False] * ordinary)
    sample = np.array(
        [settings.positive_weight if t else 1.0 for t in team_target]
        + [ordinary_weight] * ordinary
    )
    return target, sample


def _nb_ratio(present: Any, target: npt.NDArray[np.bool_], smoothing: float) -> Any:
    """log(P(feature | category) / P(feature | not category)), smoothed; 0 for unseen features."""
    inside = smoothing + np.asarray(present[target].sum(axis=0)).ravel()
    outside = smoothing + np.asarray(present[~target].sum(axis=0)).ravel()
    ratio = np.log((inside / inside.sum()) / (outside / outside.sum()))
    seen = np.asarray(present.sum(axis=0)).ravel() > 0
    return np.where(seen, ratio, 0.0)
