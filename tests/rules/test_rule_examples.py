"""Every example in the shipped rules/ is a test case; the starter set covers what it must."""

from __future__ import annotations

import json

import pytest
import regex

from bot.domain import Category
from bot.engine.matcher.lexicon import Lexicon
from bot.engine.rulebook.dialect import REGEX_FLAGS, fold_pattern_script, latin_word_boundaries
from bot.engine.rulebook.loader import load_rulebook
from bot.engine.rulebook.model import Example, Rule, Rulebook
from bot.engine.rulecheck import run_examples
from bot.engine.screener import Screener
from tests.conftest import SHIPPED_RULES

_RULEBOOK = load_rulebook(SHIPPED_RULES)  # a broken shipped rule set fails collection loudly
_SCREENER = Screener(_RULEBOOK)
_CASES = [
    pytest.param(
        rule,
        example,
        id=f"{rule.id}:{example.line}:{'match' if example.expect_match else 'no_match'}",
        # A todo example is a known gap: strict xfail, so fixing it forces moving it.
        marks=[pytest.mark.xfail(strict=True, reason="known gap")] if example.todo else [],
    )
    for rule in _RULEBOOK.rules
    for example in rule.examples
]


@pytest.mark.parametrize(("rule", "example"), _CASES)
def test_rule_example(rule: Rule, example: Example) -> None:
    # The whole rule set screens the example; only this rule's findings are judged.
    (result,) = [r for r in run_examples(_single(rule), _SCREENER) if r.example == example]
    assert result.matched == example.expect_match, result.detail


def _single(rule: Rule) -> Rulebook:
    return Rulebook(
        (rule,), _RULEBOOK.aliases, _RULEBOOK.policy, _RULEBOOK.version, _RULEBOOK.directory
    )


def test_every_starter_rule_has_five_examples_of_each_kind() -> None:
    for rule in _RULEBOOK.rules:
        matches = sum(1 for e in rule.examples if e.expect_match and not e.todo)
        misses = sum(1 for e in rule.examples if not e.expect_match and not e.todo)
        assert matches >= 5, f"{rule.path}: {matches} match examples"
        assert misses >= 5, f"{rule.path}: {misses} no_match examples"


def test_starter_set_covers_every_category_and_identifier() -> None:
    ids = {rule.id for rule in _RULEBOOK.rules}
    categories = {rule.category for rule in _RULEBOOK.rules}
    assert categories == set(Category)
    for needed in (
        "hkid",
        "cn-resident-id",
        "hk-phone",
        "cn-mobile",
        "payment-card",
        "iban",
        "email",
        "bank-account",
    ):
        assert needed in ids, f"missing starter rule {needed}"
    assert len(_RULEBOOK.rules) >= 20


def test_pattern_gates_never_change_a_verdict() -> None:
    """The prefilter only skips patterns that could not match: same findings without it."""
    ungated = Screener(_RULEBOOK, lexicon=Lexicon(_RULEBOOK, use_gates=False))
    texts = [example.text for rule in _RULEBOOK.rules for example in rule.examples]
    for text in texts:
        assert _SCREENER.screen(text).findings == ungated.screen(text).findings, text


def test_one_sided_word_boundaries_match_exactly_like_two_sided_ones() -> None:
    """The faster boundary rewrite never changes a match of any shipped pattern."""
    texts = [example.text for rule in _RULEBOOK.rules for example in rule.examples]
    for name in ("messages.jsonl", "holdout.jsonl", "holdout2.jsonl", "holdout3.jsonl"):
        lines = (SHIPPED_RULES.parent / "evals" / name).read_text(encoding="utf-8").splitlines()
        texts += [json.loads(line)["text"] for line in lines]
    normalised = [_SCREENER.lexicon.normalise(t).text for t in texts]
    for rule in _RULEBOOK.rules:
        for pattern in rule.patterns:
            fast = regex.compile(
                fold_pattern_script(latin_word_boundaries(pattern.source)), REGEX_FLAGS
            )
            slow = regex.compile(
                fold_pattern_script(latin_word_boundaries(pattern.source, one_sided=False)),
                REGEX_FLAGS,
            )
            for text in normalised:
                assert [m.span() for m in fast.finditer(text)] == [
                    m.span() for m in slow.finditer(text)
                ], (rule.id, text)
