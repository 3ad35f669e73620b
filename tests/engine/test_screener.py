"""Engine behaviour on the small fixture rule set (tests/fixtures/rules)."""

import shutil
import time
from pathlib import Path

import pytest

from bot.domain import Category, Severity
from bot.engine.rulebook.loader import load_rulebook
from bot.engine.screener import Screener
from tests.conftest import FIXTURE_RULES


def rules_hit(screener: Screener, text: str) -> dict[str, str]:
    verdict = screener.screen(text)
    return {f.rule_id: text[f.start : f.end] for f in verdict.findings}


@pytest.mark.parametrize(
    ("text", "rule", "span"),
    [
        ("We offer a guaranteed return!", "guaranteed-return", "guaranteed return"),
        (
            "ｇｕａｒａｎｔｅｅｄ　ｒｅｔｕｒｎ",
            "guaranteed-return",
            "ｇｕａｒａｎｔｅｅｄ　ｒｅｔｕｒｎ",
        ),
        ("呢隻穩賺㗎", "guaranteed-return", "穩賺"),
        ("呢只稳赚嘅", "guaranteed-return", "稳赚"),
        ("我哋guarantee 8% a year", "guaranteed-return", "guarantee 8%"),
        ("加我VX傾", "move-to-wechat", "VX"),
        ("add me on W e C h a t", "move-to-wechat", "W e C h a t"),
        ("加我 v.x", "move-to-wechat", "v.x"),
        ("we\u200bchat me", "move-to-wechat", "we\u200bchat"),
        ("g u a r a n t e e d return on this", "guaranteed-return", "g u a r a n t e e d return"),
        ("騰訊 快啲入貨啦", "buy-recommendation", "入貨"),
        ("buy now 0700.hk", "buy-recommendation", "buy now"),
    ],
)
def test_finds_rule_with_span_in_original_text(
    fixture_screener: Screener, text: str, rule: str, span: str
) -> None:
    assert rules_hit(fixture_screener, text).get(rule) == span


@pytest.mark.parametrize(
    "text",
    [
        "Returns are not guaranteed return products",  # negation before the term
        "投資不保證回報",  # negation overlapping the term
        "we chat later",  # two real words, not an evasion
        "禁止使用微信",  # quoted policy
        "Policy reminder: no 微信 for client orders",  # allow-listed message
        "buy now later",  # no security near the verb
        "A123456(4)",  # failed HKID checksum
        "hotline 2888 1234",  # context lowers a phone number below the threshold
        "0700.hk 9123.hk",  # tickers are not phone numbers
        "",
        "   \t\n ",
        "😀🚀📈",
    ],
)
def test_clean_when_the_rule_should_stay_silent(fixture_screener: Screener, text: str) -> None:
    verdict = fixture_screener.screen(text)
    assert verdict.findings == ()
    assert not verdict.flagged


def test_checksum_and_context_raise_score(fixture_screener: Screener) -> None:
    verdict = fixture_screener.screen("my HKID is A123456(3)")
    (finding,) = verdict.findings
    assert finding.score == 1.0
    assert "checksum hkid ok" in finding.why
    assert finding.category is Category.PII


def test_verdict_combines_categories_and_severity(fixture_screener: Screener) -> None:
    verdict = fixture_screener.screen("HKID A123456(3), call 9123 4567, 加我vx")
    assert verdict.categories == (Category.PII, Category.OFF_CHANNEL)
    assert verdict.severity is Severity.HIGH


def test_findings_carry_what_their_rule_keeps_visible_when_masked(
    fixture_screener: Screener,
) -> None:
    verdict = fixture_screener.screen("HKID A123456(3), call 9123 4567 pls")
    assert [(f.rule_id, f.redact, f.keep) for f in verdict.findings] == [
        ("hkid", True, (4, 0)),
        ("hk-phone", True, (4, 0)),
    ]


def test_explain_keeps_dropped_hits_with_reasons(fixture_screener: Screener) -> None:
    explanation = fixture_screener.explain("A123456(4)")
    assert explanation.normalised == "a123456(4)"
    (dropped,) = explanation.verdict.below_threshold
    assert "checksum hkid failed" in dropped.why


def test_large_message_is_screened_quickly(fixture_screener: Screener) -> None:
    text = ("market chatter about the index " * 3300) + " 加我微信 "
    assert len(text) > 100_000
    verdict = fixture_screener.screen(text)
    assert [f.rule_id for f in verdict.findings] == ["move-to-wechat"]


def test_pathological_regex_is_time_boxed(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(FIXTURE_RULES, rules)
    (rules / "advice" / "catastrophic.yaml").write_text(
        "id: catastrophic\nseverity: low\ntitle: t\nmessage: {zh: 測試, en: test}\n"
        "patterns: ['(a|aa)+$', '(x+x+)+y']\n"
        "examples: {match: [zzz], no_match: [b]}\n",
        encoding="utf-8",
    )
    screener = Screener(load_rulebook(rules))
    started = time.monotonic()
    explanation = screener.explain("a" * 40 + "b " + "x" * 40 + " 加我微信")
    assert time.monotonic() - started < 2.0
    assert any("timed out" in e for e in explanation.errors)
    # The other rules still ran on the same message.
    assert [f.rule_id for f in explanation.verdict.findings] == ["move-to-wechat"]


def test_control_characters_and_invalid_surrogates_do_not_crash(
    fixture_screener: Screener,
) -> None:
    text = "加我\x00微\x1b信\ud800 now"
    verdict = fixture_screener.screen(text)
    assert [f.rule_id for f in verdict.findings] == ["move-to-wechat"]
