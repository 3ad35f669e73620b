"""Renders verdicts for people (terminal) and machines (JSON lines); never decides anything."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, TextIO

from bot.domain import Decision, Finding, Verdict
from bot.engine.screener import Explanation


def render_verdict(text: str, verdict: Verdict, decision: Decision) -> str:
    """A short human-readable verdict. Shows the MASKED text, never raw personal data."""
    lines = [f"message: {decision.masked}"]
    if not verdict.findings:
        lines.append("verdict: clean")
        return "\n".join(lines)
    severity = verdict.severity.label if verdict.severity is not None else "-"
    categories = ", ".join(c.value for c in verdict.categories)
    lines.append(f"verdict: FLAGGED  {categories}  severity {severity}")
    lines.append(f"actions: {', '.join(a.value for a in decision.actions)}")
    for finding in verdict.findings:
        # The masked copy has the same length: its span is the finding as the chat may see it.
        shown = decision.masked[finding.start : finding.end]
        lines.append(
            f"  - {finding.rule_id} ({finding.category.value}, {finding.severity.label}) "
            f"[{finding.start}:{finding.end}] {shown!r} score {finding.score}: {finding.why}"
        )
    return "\n".join(lines)


def render_explanation(
    text: str, explanation: Explanation, decision: Decision, status: str
) -> str:
    """Everything a rule author needs to see why a message was (not) flagged."""
    verdict = explanation.verdict
    lines = [
        f"original:   {text!r}",
        f"normalised: {explanation.normalised!r}",
        f"rules:      version {verdict.rules_version}; {status}",
    ]
    if explanation.intent is not None:
        lines.append(f"intent:     model {verdict.model_version}")
        for label, score in explanation.intent.by_label.items():
            phrases = ", ".join(
                f"{explanation.normalised[p.start : p.end]!r} +{p.weight}" for p in score.phrases
            )
            lines.append(
                f"  {label:<12} {score.score:.3f}"
                + (f"  weighed most: {phrases}" if phrases else "")
            )
    if verdict.findings:
        lines.append("findings:")
        lines += [
            _hit("+", text, f, f"{f.category.value}/{f.severity.label} ") for f in verdict.findings
        ]
    else:
        lines.append("findings:   none")
    if verdict.below_threshold:
        lines.append("not counted (dropped or below min_score):")
        lines += [_hit("-", text, f) for f in verdict.below_threshold]
    if explanation.names:
        lines.append(
            "names seen: "
            + ", ".join(
                f"{text[n.start : n.end]!r} ({n.why}, {n.score})" for n in explanation.names
            )
        )
    for error in explanation.errors:
        lines.append(f"error: {error}")
    lines.append(f"actions:    {', '.join(a.value for a in decision.actions)}")
    lines.append(f"redacted:   {decision.masked}")
    return "\n".join(lines)


def _hit(sign: str, text: str, finding: Finding, kind: str = "") -> str:
    f = finding
    return (
        f"  {sign} {f.rule_id} [{f.start}:{f.end}] {text[f.start : f.end]!r} "
        f"{kind}score {f.score}\n      why: {f.why}"
    )


class Summary:
    """Counts per category and rule over a run of `screen --jsonl`."""

    def __init__(self) -> None:
        """Start empty."""
        self.messages = 0
        self.flagged = 0
        self.errors = 0
        self.categories: Counter[str] = Counter()
        self.rules: Counter[str] = Counter()

    def add(self, verdict: Verdict) -> None:
        """Count one verdict."""
        self.messages += 1
        self.flagged += bool(verdict.findings)
        self.categories.update(c.value for c in verdict.categories)
        self.rules.update({f.rule_id for f in verdict.findings})

    def write(self, out: TextIO) -> None:
        """Print the summary table."""
        out.write(
            f"\n{self.messages} messages, {self.flagged} flagged, {self.errors} bad input lines\n"
        )
        for name, count in sorted(self.categories.items()):
            out.write(f"  category {name:<12} {count}\n")
        for name, count in self.rules.most_common():
            out.write(f"  rule     {name:<28} {count}\n")


def dumps(value: dict[str, Any]) -> str:
    """Compact JSON that keeps Chinese readable."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
