"""Other rooms still import from bot.engine.rulebook and bot.engine.matcher: same objects."""

import bot.engine.matcher
import bot.engine.rulebook
from bot.engine.matcher import deadline, hits, lexicon
from bot.engine.rulebook import loader, model


def test_rulebook_names_are_the_canonical_ones() -> None:
    assert bot.engine.rulebook.load_rulebook is loader.load_rulebook
    for name in (
        "Rulebook",
        "RulebookError",
        "Policy",
        "NameRule",
        "NAME_RULE_ID",
        "Problem",
        "Example",
        "Rule",
    ):
        assert getattr(bot.engine.rulebook, name) is getattr(model, name), name


def test_matcher_names_are_the_canonical_ones() -> None:
    assert bot.engine.matcher.Lexicon is lexicon.Lexicon
    assert bot.engine.matcher.Deadline is deadline.Deadline
    assert bot.engine.matcher.Evaluated is hits.Evaluated
