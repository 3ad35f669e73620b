"""The intent model at run time: a checked model file, and scores with the phrases behind them.

A linear model over hashed unit n-grams (bot.engine.intent.features), one weight column per
label: the three categories, and ``reported`` (the message reports, warns, quotes policy or
asks: what makes a rule hit in it a false alarm). Its file is two parts: ``<name>.npz`` (the
weights) and ``<name>.json`` (what it is: labels, feature version, the npz's SHA-256, training
data hash, metrics). The hash is checked at load, so a corrupt or swapped file is refused with
one clear line, and the screener then screens with rules only and says so.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bot.domain import Category
from bot.engine.intent.features import FEATURE_VERSION, HASH_SIZE, Window, extract

TOP_PHRASES = 3  # phrases named in a finding's explanation
REPORTED = "reported"  # the label of "this message reports, warns, quotes policy or asks"
LABELS = (*(c.value for c in Category), REPORTED)


class IntentModelError(Exception):
    """The model file cannot be used; the message says which file and why (one line)."""


@dataclass(frozen=True, slots=True)
class Phrase:
    """A stretch of the normalised text and how much it pushed the score up."""

    start: int
    end: int
    weight: float


@dataclass(frozen=True, slots=True)
class IntentScore:
    """The model's view of one label on one message."""

    label: str  # a category's value, or REPORTED
    score: float  # probability-like, 0..1: the strongest window
    phrases: tuple[Phrase, ...]  # what weighed most in that window, strongest first


@dataclass(frozen=True, slots=True)
class IntentScores:
    """Every label's score on one message."""

    by_label: dict[str, IntentScore]
    truncated: bool  # the message was too long to model to its end

    def get(self, category: Category) -> IntentScore | None:
        """The score of ``category``, if the model judges it."""
        return self.by_label.get(category.value)

    def score(self, category: Category) -> float:
        """The score of ``category`` (0 when the model does not judge it)."""
        found = self.get(category)
        return found.score if found is not None else 0.0

    @property
    def reported(self) -> float:
        """How sure the model is that the message reports, warns, quotes policy or asks."""
        found = self.by_label.get(REPORTED)
        return found.score if found is not None else 0.0


class IntentModel:
    """Loaded weights; :meth:`score` is pure and thread-safe (numpy reads only)."""

    def __init__(
        self,
        name: str,
        labels: tuple[str, ...],
        weights: npt.NDArray[np.float32],
        bias: npt.NDArray[np.float32],
        meta: dict[str, Any],
    ) -> None:
        """Use :meth:`load`; ``weights`` is (HASH_SIZE, len(labels))."""
        self.name = name
        self.labels = labels
        self.weights = weights
        self.bias = bias
        self.meta = meta
        self.version = f"{name}@{str(meta['sha256'])[:12]}"

    @classmethod
    def load(cls, directory: Path, name: str) -> IntentModel:
        """Read and check ``<name>.json`` and ``<name>.npz`` in ``directory``.

        Raises:
            IntentModelError: missing, unreadable, corrupt (hash), or built for other features.
        """
        meta_path, weights_path = directory / f"{name}.json", directory / f"{name}.npz"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            blob = weights_path.read_bytes()
        except FileNotFoundError as error:
            raise IntentModelError(f"intent model file missing: {error.filename}") from None
        except (OSError, ValueError) as error:
            raise IntentModelError(f"intent model {meta_path} unreadable: {error}") from None
        if not isinstance(meta, dict) or "sha256" not in meta or "labels" not in meta:
            raise IntentModelError(f"{meta_path} is not an intent model description")
        digest = hashlib.sha256(blob).hexdigest()
        if digest != meta["sha256"]:
            raise IntentModelError(
                f"{weights_path} does not match its description (SHA-256 {digest[:12]}, "
                f"expected {str(meta['sha256'])[:12]}): corrupt or replaced"
            )
        if meta.get("feature_version") != FEATURE_VERSION:
            raise IntentModelError(
                f"{meta_path} was built for features {meta.get('feature_version')!r}; "
                f"this code extracts {FEATURE_VERSION!r}: retrain with `python -m bot train`"
            )
        labels = tuple(str(label) for label in meta["labels"])
        if not set(labels) <= set(LABELS):
            raise IntentModelError(f"{meta_path} names unknown labels: {', '.join(labels)}")
        weights, bias = _read_weights(weights_path, len(labels))
        return cls(name, labels, weights, bias, meta)

    def score(self, normalised: str) -> IntentScores:
        """Score every label on ``normalised`` text (bot.engine.normalize), window by window."""
        extraction = extract(normalised)
        best: list[tuple[float, Window | None]] = [(-math.inf, None)] * len(self.labels)
        for window in extraction.windows:
            logits = self._logits(window)
            for column, logit in enumerate(logits):
                if logit > best[column][0]:
                    best[column] = (float(logit), window)
        scores = {}
        for column, label in enumerate(self.labels):
            logit, strongest = best[column]
            phrases = self._phrases(strongest, column) if strongest is not None else ()
            scores[label] = IntentScore(label, _sigmoid(logit), phrases)
        return IntentScores(scores, extraction.truncated)

    def _logits(self, window: Window) -> npt.NDArray[np.float32]:
        rows = self.weights[list(window.indices)]
        scale = 1.0 / math.sqrt(len(window.indices))
        result: npt.NDArray[np.float32] = rows.sum(axis=0) * scale + self.bias
        return result

    def _phrases(self, window: Window, column: int) -> tuple[Phrase, ...]:
        weights = self.weights[list(window.indices), column]
        order = np.argsort(-weights)
        scale = 1.0 / math.sqrt(len(window.indices))
        chosen: list[Phrase] = []
        for position in order:
            weight = float(weights[position]) * scale
            if weight <= 0 or len(chosen) >= TOP_PHRASES:
                break
            start, end = window.spans[position]
            if end <= start or any(p.start < end and start < p.end for p in chosen):
                continue  # the bias, or a phrase overlapping a stronger one
            chosen.append(Phrase(start, end, round(weight, 3)))
        return tuple(chosen)


def _sigmoid(logit: float) -> float:
    if logit == -math.inf:
        return 0.0
    return round(1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, logit)))), 4)


def _read_weights(
    path: Path, labels: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    try:
        with np.load(path, allow_pickle=False) as data:
            indices = np.asarray(data["indices"], dtype=np.int64)
            values = np.asarray(data["values"], dtype=np.float32)
            bias = np.asarray(data["bias"], dtype=np.float32)
    except (OSError, ValueError, KeyError) as error:
        raise IntentModelError(f"{path} is not a weights file: {error}") from None
    if (
        values.shape != (len(indices), labels)
        or bias.shape != (labels,)
        or (len(indices) and (indices.min() < 0 or indices.max() >= HASH_SIZE))
    ):
        raise IntentModelError(f"{path} has weights of the wrong shape for {labels} labels")
    weights = np.zeros((HASH_SIZE, labels), dtype=np.float32)
    weights[indices] = values
    return weights, bias


def save_weights(
    path: Path, weights: npt.NDArray[np.float32], bias: npt.NDArray[np.float32]
) -> str:
    """Write the weights sparsely (only rows with a non-zero weight); return the file's SHA-256.

    Deterministic: the same weights give the same bytes (no timestamps in the archive).
    """
    rows = np.flatnonzero(np.any(weights != 0, axis=1)).astype(np.int32)
    # np.savez writes zip entries with a fixed date, so equal arrays give equal files.
    with path.open("wb") as handle:
        np.savez_compressed(
            handle,
            indices=rows,
            values=weights[rows].astype(np.float32),
            bias=bias.astype(np.float32),
        )
    return hashlib.sha256(path.read_bytes()).hexdigest()
