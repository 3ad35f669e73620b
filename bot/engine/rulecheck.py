"""`rules check`: validates a rules directory and runs every rule's own examples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.engine.rulebook.loader import load_rulebook
from bot.engine.rulebook.model import Example, Problem, Rule, Rulebook, RulebookError
from bot.engine.screener import Screener


@dataclass(frozen=True, slots=True)
class ExampleResult:
    """The outcome of one rule example."""

    rule: Rule
    example: Example
    matched: bool
    detail: str  # what the rule found, or why it dropped its hits

    @property
    def passed(self) -> bool:
        """True when the example behaved as the author said (a todo passes when it still fails)."""
        return (self.matched == self.example.expect_match) != self.example.todo

    def problem(self) -> Problem:
        """Describe a failed example for the rule author."""
        if self.example.todo:
            what = "todo example now behaves as wanted: move it into examples"
        elif self.example.expect_match:
            what = "should match but did not"
        else:
            what = "should not match but did"
        return Problem(
            self.rule.path, self.example.line, f"{what}: {self.example.text!r} ({self.detail})"
        )


def run_examples(rulebook: Rulebook, screener: Screener | None = None) -> list[ExampleResult]:
    """Screen every example with the whole rule set and check this rule's findings."""
    screener = screener or Screener(rulebook)
    results: list[ExampleResult] = []
    for rule in rulebook.rules:
        for example in rule.examples:
            explanation = screener.explain(example.text)
            own = [f for f in explanation.verdict.findings if f.rule_id == rule.id]
            if own:
                detail = "; ".join(
                    f"{example.text[f.start : f.end]!r} score {f.score}: {f.why}" for f in own
                )
            else:
                dropped = [e for e in explanation.evaluated if e.rule.id == rule.id]
                detail = "; ".join(
                    f"{example.text[e.start : e.end]!r} score {e.score}: {e.why}" for e in dropped
                )
                detail = f"dropped {detail}" if detail else "no candidate hit"
            results.append(ExampleResult(rule, example, bool(own), detail))
    return results


def check_directory(
    directory: Path, *, min_examples: int = 1
) -> tuple[Rulebook | None, list[Problem], int]:
    """Load, validate and run examples; return the rulebook, every problem, and examples run."""
    try:
        rulebook = load_rulebook(directory)
    except RulebookError as error:
        return None, error.problems, 0
    problems: list[Problem] = []
    for rule in rulebook.rules:
        for expect, key in ((True, "match"), (False, "no_match")):
            count = sum(1 for e in rule.examples if e.expect_match is expect and not e.todo)
            if count < min_examples:
                line = rule.line_of.get("examples", 1)
                problems.append(
                    Problem(
                        rule.path,
                        line,
                        f"needs at least {min_examples} examples.{key} (has {count})",
                    )
                )
    results = run_examples(rulebook)
    problems.extend(r.problem() for r in results if not r.passed)
    return rulebook, problems, len(results)
