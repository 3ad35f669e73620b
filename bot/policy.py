"""The one decision point: verdict + sender history + policy -> actions and the masked copy.

Pure and synchronous. The command line (``screen``, ``rules explain``), the bot's pipeline and
the archive all take their actions and redacted text from :func:`decide`, so what a rule
author sees in ``rules explain`` is what the bot does.
"""

from __future__ import annotations

from bot.domain import Action, Category, Decision, Finding, Verdict
from bot.engine.redaction import redact
from bot.engine.rulebook.model import Policy


def decide(verdict: Verdict, text: str, policy: Policy, *, strikes: int = 0) -> Decision:
    """The actions for ``verdict`` and the masked copy of ``text``.

    ``strikes`` is the sender's count of flagged messages inside the repeat window (this one
    included); at ``policy.repeat_threshold`` the repeat-offender action is added.
    """
    chosen = dict.fromkeys([Action.LOG])
    for finding in verdict.findings:
        chosen.update(dict.fromkeys(policy.actions_for(finding.category, finding.severity)))
    repeat = verdict.flagged and strikes >= policy.repeat_threshold
    if repeat:
        chosen[policy.repeat_action] = None
    return Decision(
        actions=tuple(a for a in Action if a in chosen),
        masked=masked_copy(text, verdict.findings),
        strikes=strikes,
        repeat_offender=repeat,
    )


def masked_copy(text: str, findings: tuple[Finding, ...]) -> str:
    """``text`` with each span its rule marks for redaction masked, and all personal data.

    A personal-data finding from a rule without a ``redact`` spec is masked entirely: the
    PDPO concern is the data, not whether the rule author remembered the spec. Masking keeps
    the length, so finding offsets still apply to the masked copy.
    """
    spans = [
        (f.start, f.end, *(f.keep if f.redact else (0, 0)))
        for f in findings
        if f.redact or f.category is Category.PII
    ]
    return redact(text, spans) if spans else text
