"""Fitting the linear intent model: hashed features, one logistic regression per category.

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
from bot.training.data import Labelled

SEED = 20261201


@dataclass(frozen=True, slots=True)
class FitSettings:
    """What the fit may vary; recorded in the model's description."""

    c: float = 4.0  # inverse regularisation strength
    ordinary_weight: float = 0.3  # weight of one ordinary-chat negative against one team message
    positive_weight: float = 2.0  # misses cost fines; false alarms cost minutes

    def to_dict(self) -> dict[str, float]:
        """For the model description."""
        return {
            "c": self.c,
            "ordinary_weight": self.ordinary_weight,
            "positive_weight": self.positive_weight,
        }


@dataclass(frozen=True, slots=True)
class Fitted:
    """Weights for every category, in the runtime model's layout."""

    labels: tuple[Category, ...]
    weights: npt.NDArray[np.float32]  # (HASH_SIZE, len(labels))
    bias: npt.NDArray[np.float32]


def design(texts: Sequence[str], normalise: Callable[[str], str]) -> Any:
    """One row per message: its first window's features, valued 1/sqrt(count) (as at run time).

    Training messages are chat-sized; a long one is represented by its first window, since its
    label may come from any sentence and the others would teach noise.
    """
    from scipy import sparse  # noqa: PLC0415  (heavy, training only; the bot never loads it)

    indptr: list[int] = [0]
    indices: list[int] = []
    values: list[float] = []
    for text in texts:
        window = extract(normalise(text)).windows[0]
        scale = 1.0 / math.sqrt(len(window.indices))
        indices.extend(window.indices)
        values.extend([scale] * len(window.indices))
        indptr.append(len(indices))
    return sparse.csr_matrix(
        (np.asarray(values, dtype=np.float64), np.asarray(indices), np.asarray(indptr)),
        shape=(len(texts), HASH_SIZE),
    )


def fit(
    team: Sequence[Labelled],
    ordinary: Sequence[str],
    normalise: Callable[[str], str],
    labels: Sequence[Category],
    settings: FitSettings,
) -> Fitted:
    """Fit one logistic regression per category over the team's messages and ordinary chat."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415  (training only)

    texts = [r.text for r in team] + list(ordinary)
    matrix = design(texts, normalise)
    weights = np.zeros((HASH_SIZE, len(labels)), dtype=np.float32)
    bias = np.zeros(len(labels), dtype=np.float32)
    for column, category in enumerate(labels):
        target = np.array([r.has(category) for r in team] + [False] * len(ordinary))
        if target.all() or not target.any():
            # Nothing to tell apart (no example of one side): the model never flags it.
            bias[column] = np.float32(-20.0)
            continue
        sample = np.array(
            [settings.positive_weight if r.has(category) else 1.0 for r in team]
            + [settings.ordinary_weight] * len(ordinary)
        )
        model = LogisticRegression(
            C=settings.c, solver="liblinear", random_state=SEED, max_iter=1000
        )
        model.fit(matrix, target, sample_weight=sample)
        weights[:, column] = model.coef_[0].astype(np.float32)
        bias[column] = np.float32(model.intercept_[0])
    return Fitted(tuple(labels), weights, bias)
