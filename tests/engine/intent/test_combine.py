"""Rules and model together: the model vetoes reported speech, flags what no rule saw, never a checksum."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from bot.domain import Category, Severity
from bot.engine.intent.model import IntentModel
from bot.engine.rulebook.loader import load_rulebook
from bot.engine.rulebook.model import IntentPolicy, IntentRule, Rulebook
from bot.engine.screener import Screener
from tests.conftest import FIXTURE_RULES
from tests.engine.intent.conftest import make_model

WEIGHTS = {
    Category.ADVICE: {"1:double": 40.0, "2:load the": 20.0, "3:load the boat": 40.0},
    Category.OFF_CHANNEL: {"1:discord": 60.0},
    "reported": {"1:fined": 60.0, "1:news": 30.0},
}
POLICY = IntentPolicy(
    "hand",
    {
        Category.ADVICE: IntentRule(
            Category.ADVICE,
            flag_at=0.9,
            veto_when_reported=0.9,
            severity=Severity.HIGH,
            title="Advice",
        ),
        Category.OFF_CHANNEL: IntentRule(
            Category.OFF_CHANNEL, flag_at=0.9, veto_when_reported=0.9
        ),
    },
)


@pytest.fixture(scope="module")
def rulebook() -> Rulebook:
    base = load_rulebook(FIXTURE_RULES)
    return dataclasses.replace(base, policy=dataclasses.replace(base.policy, intent=POLICY))


@pytest.fixture
def screener(rulebook: Rulebook, tmp_path: Path) -> Screener:
    return Screener(rulebook, intent=IntentModel.load(make_model(tmp_path, WEIGHTS), "hand"))


def test_the_model_flags_what_no_rule_saw_and_says_why(screener: Screener) -> None:
    text = "Load the boat on 0700 before Friday"
    verdict = screener.screen(text)
    (finding,) = verdict.findings
    assert finding.rule_id == "intent-advice"
    assert finding.severity is Severity.HIGH
    assert text[finding.start : finding.end] == "Load the boat"
    assert "phrases that weighed most: 'Load the boat'" in finding.why  # as written
    assert verdict.model_version == screener.model_version != ""


def test_digits_in_a_phrase_are_not_repeated_in_the_explanation(
    rulebook: Rulebook, tmp_path: Path
) -> None:
    model = IntentModel.load(make_model(tmp_path, {Category.ADVICE: {"2:double 0": 80.0}}), "hand")
    verdict = Screener(rulebook, intent=model).screen("double 9123 now")
    assert "9123" not in verdict.findings[0].why
    assert "'double ####'" in verdict.findings[0].why


def test_a_rule_hit_in_reported_speech_is_vetoed_and_kept_for_explain(
    screener: Screener,
) -> None:
    # The fixture's move-to-wechat rule fires on 加我vx; "fined" makes it a news report.
    text = "news: bank fined after staff said 加我vx to clients"
    verdict = screener.screen(text)
    assert Category.OFF_CHANNEL not in verdict.categories
    (vetoed,) = [f for f in verdict.below_threshold if f.rule_id == "move-to-wechat"]
    assert ">= veto_when_reported 0.9: the message reports, warns, quotes policy or asks" in (
        vetoed.why
    )


def test_a_rule_hit_the_model_agrees_with_carries_its_score(screener: Screener) -> None:
    verdict = screener.screen("加我vx, discord too")
    (finding,) = [f for f in verdict.findings if f.rule_id == "move-to-wechat"]
    assert "intent model hand@" in finding.why
    assert "reported 0.0" in finding.why


def test_no_veto_when_the_model_itself_is_alarmed(screener: Screener) -> None:
    # Reported, but the model also scores off_channel high: a report that still moves the talk.
    verdict = screener.screen("news: fined, but 加我vx or discord anyway")
    assert Category.OFF_CHANNEL in verdict.categories


def test_a_disguised_term_is_never_vetoed(screener: Screener) -> None:
    verdict = screener.screen("news: fined, w e c h a t me")
    assert Category.OFF_CHANNEL in verdict.categories


def test_a_checksum_is_never_vetoed(rulebook: Rulebook, tmp_path: Path) -> None:
    policy = IntentPolicy("hand", {Category.PII: IntentRule(Category.PII, veto_when_reported=0.5)})
    book = dataclasses.replace(
        rulebook, policy=dataclasses.replace(rulebook.policy, intent=policy)
    )
    model = IntentModel.load(make_model(tmp_path, WEIGHTS), "hand")
    verdict = Screener(book, intent=model).screen("news: fined, HKID A123456(3)")
    assert [f.rule_id for f in verdict.findings] == ["hkid"]


def test_without_a_model_the_rules_alone_decide(rulebook: Rulebook) -> None:
    verdict = Screener(rulebook).screen("Load the boat on 0700 before Friday")
    assert verdict.findings == ()
    assert verdict.model_version == ""


def test_a_broken_model_file_leaves_rules_screening_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(FIXTURE_RULES, rules)
    with (rules / "policy.yaml").open("a", encoding="utf-8") as policy:
        policy.write("\nintent:\n  model: hand\n  advice: {flag_at: 0.9, title: Advice}\n")
    models = tmp_path / "models"
    make_model((models / "intent").mkdir(parents=True) or models / "intent", WEIGHTS)
    (models / "intent" / "hand.npz").write_bytes(b"not a zip")
    monkeypatch.setenv("BOT_MODELS_DIR", str(models))
    screener = Screener.from_directory(rules, ner=False)
    assert screener.intent is None
    assert "screening with rules only" in screener.intent_status
    assert "does not match its description" in screener.intent_status
    assert screener.screen("A123456(3) HKID").categories == (Category.PII,)
