"""Quality figures: precision and recall per category, and false alarms per 10,000 messages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bot.domain import Category, Verdict
from bot.engine.evaluate import CategoryScore
from bot.engine.screener import Screener
from bot.training.data import LABELS, Labelled


@dataclass(slots=True)
class SetScore:
    """Scores of every category on one labelled set."""

    messages: int = 0
    counts: dict[Category, CategoryScore] = field(
        default_factory=lambda: {c: CategoryScore() for c in LABELS}
    )

    def add(self, expected: frozenset[Category], got: Iterable[Category]) -> None:
        """Count one message."""
        self.messages += 1
        found = set(got)
        for category, counts in self.counts.items():
            counts.count(category in expected, category in found)

    @property
    def macro_f1(self) -> float:
        """Mean F1 over the categories: one number to compare two models with."""
        return sum(c.f1 for c in self.counts.values()) / len(self.counts)

    def to_dict(self) -> dict[str, object]:
        """Figures for reports and the model description."""
        return {
            "messages": self.messages,
            "macro_f1": round(self.macro_f1, 4),
            **{c.value: counts.to_dict() for c, counts in self.counts.items()},
        }

    def render(self, title: str) -> str:
        """A table a compliance officer can read."""
        lines = [f"{title} ({self.messages} messages, macro F1 {self.macro_f1:.3f})"]
        for category, counts in self.counts.items():
            lines.append(
                f"  {category.value:<12} precision {counts.precision:.3f}  recall "
                f"{counts.recall:.3f}  (tp {counts.true_positive}, fp {counts.false_positive}, "
                f"fn {counts.false_negative})"
            )
        return "\n".join(lines)


def score_set(screener: Screener, records: Sequence[Labelled]) -> SetScore:
    """Screen every message and compare its categories with the labels."""
    result = SetScore()
    for record in records:
        result.add(record.labels, screener.screen(record.text).categories)
    return result


@dataclass(frozen=True, slots=True)
class FalseAlarms:
    """Ordinary messages that were flagged."""

    messages: int
    flagged: tuple[tuple[str, Verdict], ...]

    @property
    def per_10k(self) -> float:
        """Flagged ordinary messages per 10,000."""
        return 10_000 * len(self.flagged) / self.messages if self.messages else 0.0

    def by_category(self) -> dict[str, int]:
        """How many flagged messages carry each category."""
        out = {c.value: 0 for c in LABELS}
        for _, verdict in self.flagged:
            for category in verdict.categories:
                out[category.value] += 1
        return out


def false_alarms(screener: Screener, texts: Sequence[str]) -> FalseAlarms:
    """Screen ordinary messages (none should be flagged) and keep the ones that were."""
    flagged = []
    for text in texts:
        verdict = screener.screen(text)
        if verdict.flagged:
            flagged.append((text, verdict))
    return FalseAlarms(len(texts), tuple(flagged))
