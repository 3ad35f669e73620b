"""Precision and recall per category on a labelled message set (message-level labels)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from bot.domain import Category
from bot.engine.screener import Screener


@dataclass(slots=True)
class CategoryScore:
    """Confusion counts of one category."""

    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0

    @property
    def precision(self) -> float:
        """Flagged messages that were right (1.0 when nothing was flagged)."""
        flagged = self.true_positive + self.false_positive
        return self.true_positive / flagged if flagged else 1.0

    @property
    def recall(self) -> float:
        """Risky messages that were caught (1.0 when there were none)."""
        risky = self.true_positive + self.false_negative
        return self.true_positive / risky if risky else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def count(self, expected: bool, got: bool) -> None:
        """Count one message's outcome for this category."""
        if got and expected:
            self.true_positive += 1
        elif got:
            self.false_positive += 1
        elif expected:
            self.false_negative += 1

    def to_dict(self) -> dict[str, float]:
        """Rounded figures for reports and the model description."""
        return {
            "precision": round(self.precision, 3),
            "recall": round(self.recall, 3),
            "tp": self.true_positive,
            "fp": self.false_positive,
            "fn": self.false_negative,
        }


@dataclass(slots=True)
class EvalReport:
    """Scores per category plus the misclassified messages."""

    messages: int = 0
    scores: dict[Category, CategoryScore] = field(
        default_factory=lambda: {c: CategoryScore() for c in Category}
    )
    errors: list[str] = field(default_factory=list)

    def render(self, *, show_errors: bool = False) -> str:
        """A table a compliance officer can read."""
        lines = [
            f"{self.messages} labelled messages",
            f"{'category':<12} {'precision':>9} {'recall':>7}   tp  fp  fn",
        ]
        for category, score in self.scores.items():
            lines.append(
                f"{category.value:<12} {score.precision:>9.3f} {score.recall:>7.3f} "
                f"{score.true_positive:>4} {score.false_positive:>3} {score.false_negative:>3}"
            )
        if show_errors and self.errors:
            lines.append("\nmisclassified:")
            lines.extend(self.errors)
        return "\n".join(lines)


def evaluate_file(screener: Screener, path: Path) -> EvalReport:
    """Screen every line of ``path`` ({"id","text","labels"}) and compare categories."""
    report = EvalReport()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        expected = {Category(label) for label in item.get("labels", [])}
        verdict = screener.screen(item["text"])
        got = set(verdict.categories)
        report.messages += 1
        for category in Category:
            score = report.scores[category]
            if category in got and category in expected:
                score.true_positive += 1
            elif category in got:
                score.false_positive += 1
                why = "; ".join(
                    f"{f.rule_id}: {f.why}" for f in verdict.findings if f.category is category
                )
                report.errors.append(
                    f"FP {category.value:<11} {item.get('id')}: {item['text']!r}  [{why}]"
                )
            elif category in expected:
                score.false_negative += 1
                report.errors.append(f"FN {category.value:<11} {item.get('id')}: {item['text']!r}")
    return report
