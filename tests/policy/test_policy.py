"""The one decision point: actions per finding, the repeat-offender action, the masked copy."""

from __future__ import annotations

from bot.domain import Action, Category, Finding, Severity, Verdict
from bot.engine.screener import Screener
from bot.policy import decide, masked_copy

ADVICE_TEXT = "I would buy 0700.HK here, strong buy"


def test_clean_verdict_is_only_logged(fixture_screener: Screener) -> None:
    verdict = fixture_screener.screen("lunch at 12:30?")
    decision = decide(verdict, "lunch at 12:30?", fixture_screener.policy, strikes=99)
    assert decision.actions == (Action.LOG,)
    assert decision.masked == "lunch at 12:30?"
    assert not decision.repeat_offender


def test_actions_are_the_union_over_findings_in_a_fixed_order(
    fixture_screener: Screener,
) -> None:
    text = "HKID A123456(3), call 9123 4567, 加我vx"
    decision = decide(fixture_screener.screen(text), text, fixture_screener.policy)
    assert decision.actions == (Action.LOG, Action.WARN, Action.REDACT, Action.ESCALATE)


def test_masked_copy_masks_personal_data_and_keeps_the_rest(fixture_screener: Screener) -> None:
    text = "HKID A123456(3), call 9123 4567 pls"
    decision = decide(fixture_screener.screen(text), text, fixture_screener.policy)
    assert decision.masked == "HKID A123***(*), call 9123 **** pls"
    assert len(decision.masked) == len(text)  # finding offsets still apply


def test_repeat_action_is_added_only_at_the_threshold(shipped_screener: Screener) -> None:
    policy = shipped_screener.policy
    verdict = shipped_screener.screen(ADVICE_TEXT)
    below = decide(verdict, ADVICE_TEXT, policy, strikes=2)
    assert (below.actions, below.repeat_offender) == ((Action.LOG, Action.WARN), False)
    at = decide(verdict, ADVICE_TEXT, policy, strikes=3)
    assert (at.actions, at.repeat_offender, at.strikes) == (
        (Action.LOG, Action.WARN, Action.ESCALATE),
        True,
        3,
    )


def test_masked_copy_hides_personal_data_even_without_a_redact_spec() -> None:
    text = "call 9123 4567 now"
    finding = Finding("phone", Category.PII, Severity.MEDIUM, 5, 14, 0.9, "why", redact=False)
    assert masked_copy(text, (finding,)) == "call **** **** now"


def test_non_personal_findings_are_not_masked() -> None:
    text = "buy 0700 now"
    finding = Finding("buy", Category.ADVICE, Severity.MEDIUM, 0, 8, 0.9, "why")
    verdict = Verdict((finding,), (Category.ADVICE,), Severity.MEDIUM, "v")
    assert masked_copy(text, verdict.findings) == text
