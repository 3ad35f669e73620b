"""Rules and the intent model together, as policy.yaml ``intent:`` says: veto, or flag alone.

Rules stay the authority on identifiers (a checksum is proof, never vetoed) and are
high-precision seeds; the model adds recall where no rule fired (``flag_at``) and drops a rule
hit whose message does something else: reports, warns, quotes policy, asks (``veto_below``).
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
        score = scores.by_category.get(finding.category)
        if rule is None or score is None:
            kept.append(finding)
            continue
        said = f"intent model {model_version}: {finding.category.value} {score.score:.2f}"
        if rule.veto_below is not None and score.score < rule.veto_below and vetoable(finding):
            reason = f"{said} < veto_below {rule.veto_below} (the message does something else)"
            vetoed.append(dataclasses.replace(finding, score=0.0, why=f"{finding.why}; {reason}"))
        else:
            kept.append(dataclasses.replace(finding, why=f"{finding.why}; {said}"))
    flagged = {f.category for f in kept}
    added = [
        _model_finding(rule, scores.by_category[category], model_version, phrase_text)
        for category, rule in policy.rules.items()
        if category not in flagged
        and rule.flag_at is not None
        and category in scores.by_category
        and scores.by_category[category].score >= rule.flag_at
    ]
    return Combined(kept, vetoed, added)


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
