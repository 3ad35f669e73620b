"""Hand-built intent models: known weights on known features, so scores are predictable."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from bot.domain import Category
from bot.engine.intent import features
from bot.engine.intent.model import LABELS, save_weights


def make_model(
    directory: Path,
    weights: Mapping[Category | str, Mapping[str, float]],
    *,
    bias: float = -3.0,
    name: str = "hand",
) -> Path:
    """Write a model whose only non-zero weights are on the named features (e.g. "1:double")."""
    matrix = np.zeros((features.HASH_SIZE, len(LABELS)), dtype=np.float32)
    named = {getattr(k, "value", k): v for k, v in weights.items()}
    for column, label in enumerate(LABELS):
        for feature, weight in named.get(label, {}).items():
            matrix[features._hash(feature), column] = weight
    digest = save_weights(
        directory / f"{name}.npz", matrix, np.full(len(LABELS), bias, np.float32)
    )
    meta = {
        "name": name,
        "labels": list(LABELS),
        "feature_version": features.FEATURE_VERSION,
        "sha256": digest,
    }
    (directory / f"{name}.json").write_text(json.dumps(meta), encoding="utf-8")
    return directory
