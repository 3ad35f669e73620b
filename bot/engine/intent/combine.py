"""Rules and the intent model together, as policy.yaml ``intent:`` says: veto, or flag alone.

Rules stay the authority on identifiers (a checksum is proof, never vetoed) and are
high-precision seeds; the model adds recall where no rule fired (``flag_at``) and drops a rule
hit whose message does something else: reports, warns, quotes policy, asks
(``veto_when_reported``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import regex

from bot.domain import Finding
from bot.engine.intent.model import IntentScore, IntentScores
from bot.engine.rulebook.model import IntentPolicy, IntentRule

_DIGIT = regex.compile(r"\d")


@dataclass(frozen=True, slots=True)
class Combined:
    """The findings after the model had its say."""

    kept: list[Finding]  # rule findings that stand (their why carries the model's score)
    vetoed: list[Finding]  # rule findings the model dropped (kept for explain and audit)
    added: list[Finding]  # the model's own findings where no rule fired


def combine(
    findings: Iterable[Finding],
    scores: IntentScores,
    policy: IntentPolicy,
    *,
    model_version: str,
    vetoable: Callable[[Finding], bool],
    phrase_text: Callable[[int, int], tuple[int, int, str]],
) -> Combined:
    """Apply ``policy`` to rule ``findings`` given the model's ``scores``.

    ``vetoable`` says whether a rule finding may be dropped (not when a checksum proved it);
    ``phrase_text`` maps a normalised span to (original start, end, text to show).
    """
    kept: list[Finding] = []
    vetoed: list[Finding] = []
    for finding in findings:
        rule = policy.rules.get(finding.category)
        score = scores.get(finding.category)
        if rule is None or score is None:
            kept.append(finding)
            continue
        said = (
            f"intent model {model_version}: {finding.category.value} {score.score:.2f}, "
            f"reported {scores.reported:.2f}"
        )
        if _vetoes(rule, score.score, scores.reported) and vetoable(finding):
            reason = (
                f"{said} >= veto_when_reported {rule.veto_when_reported}: the message reports, "
                "warns, quotes policy or asks"
            )
            vetoed.append(dataclasses.replace(finding, score=0.0, why=f"{finding.why}; {reason}"))
        else:
            kept.append(dataclasses.replace(finding, why=f"{finding.why}; {said}"))
    flagged = {f.category for f in kept}
    added = []
    for category, rule in policy.rules.items():
        score = scores.get(category)
        if (
            category not in flagged
            and score is not None
            and rule.flag_at is not None
            and score.score >= rule.flag_at
        ):
            added.append(_model_finding(rule, score, model_version, phrase_text))
    return Combined(kept, vetoed, added)


def _vetoes(rule: IntentRule, score: float, reported: float) -> bool:
    """Whether the model drops a rule hit: sure it is reported speech, and not itself alarmed."""
    if rule.veto_when_reported is None or reported < rule.veto_when_reported:
        return False
    return rule.flag_at is None or score < rule.flag_at


def _model_finding(
    rule: IntentRule,
    score: IntentScore,
    model_version: str,
    phrase_text: Callable[[int, int], tuple[int, int, str]],
) -> Finding:
    shown = [(*phrase_text(p.start, p.end), p.weight) for p in score.phrases]
    # The span is the phrase that weighed most (what a reviewer should look at first).
    start, end = (shown[0][0], shown[0][1]) if shown else (0, 0)
    weighed = ", ".join(f"'{_DIGIT.sub('#', text)}' +{weight}" for _, _, text, weight in shown)
    return Finding(
        rule_id=rule.id,
        category=rule.category,
        severity=rule.severity,
        start=start,
        end=end,
        score=round(score.score, 3),
        why=(
            f"intent model {model_version}: {rule.category.value} {score.score:.2f} "
            f">= flag_at {rule.flag_at}; phrases that weighed most: {weighed or 'none'}"
        ),
        title=rule.title,
    )
