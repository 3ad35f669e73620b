r"""The rule pattern dialect: \b means a Latin-word boundary, Chinese in either script."""

import pytest

from bot.engine.rulebook.dialect import compile_pattern, fold_pattern_script, latin_word_boundaries

LATIN = r"[\p{Latin}\d]"


def test_chinese_in_a_pattern_is_folded_to_simplified_and_syntax_is_kept() -> None:
    assert fold_pattern_script(r"搵(?:我|佢)\s*飛機") == r"揾(?:我|佢)\s*飞机"


@pytest.mark.parametrize(
    ("source", "rewritten"),
    [
        (r"\bbuy\b", rf"(?<!{LATIN})buy(?!{LATIN})"),  # the side the word is on is known
        (r"(?:on|via)\b", rf"(?:on|via)(?!{LATIN})"),
        (r"[\b]x", r"[\b]x"),  # inside a class \b is a backspace
    ],
)
def test_word_boundaries_become_one_sided_where_the_word_side_is_known(
    source: str, rewritten: str
) -> None:
    assert latin_word_boundaries(source) == rewritten


def test_two_sided_boundary_when_asked() -> None:
    boundary = rf"(?:(?<!{LATIN})(?={LATIN})|(?<={LATIN})(?!{LATIN}))"
    assert latin_word_boundaries(r"\bbuy\b", one_sided=False) == f"{boundary}buy{boundary}"


@pytest.mark.parametrize(
    ("text", "matches"),
    [("快啲buy啦", True), ("we buy now", True), ("buyer", False), ("buy2", False)],
)
def test_a_latin_word_next_to_chinese_is_still_a_word(text: str, matches: bool) -> None:
    assert bool(compile_pattern(r"\bbuy\b").search(text)) is matches
