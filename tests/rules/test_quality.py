"""Quality regression guard: the labelled sets keep their precision and recall per category."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.engine.evaluate import evaluate_file
from bot.engine.screener import Screener
from tests.conftest import REPO

SETS = ["messages.jsonl", "holdout.jsonl", "holdout2.jsonl", "holdout3.jsonl"]


@pytest.mark.parametrize("name", SETS)
def test_precision_and_recall_per_category_meet_target(
    shipped_screener: Screener, name: str
) -> None:
    report = evaluate_file(shipped_screener, Path(REPO / "evals" / name))
    assert report.messages >= 60
    for category, score in report.scores.items():
        assert score.recall >= 0.95, (category, score, report.errors)
        assert score.precision >= 0.90, (category, score, report.errors)


def test_evaluation_sets_are_large_and_balanced() -> None:
    total = 0
    for name in SETS:
        lines = (REPO / "evals" / name).read_text(encoding="utf-8").splitlines()
        total += len(lines)
    assert total >= 450
