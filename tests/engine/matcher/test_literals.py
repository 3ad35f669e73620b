"""Required literals: a set one of which every match contains, the most selective found."""

import pytest

from bot.engine.matcher.literals import required_literals
from bot.engine.matcher.syntax import parse


@pytest.mark.parametrize(
    ("pattern", "literals"),
    [
        ("wa|wts", {"wa", "wts"}),  # the parser factors out "w": glued back on
        ("x(?:wa|wts)y", {"xwa", "xwts"}),
        (r"(?:whatsapp|\w+)\s+me", {"me"}),  # one alternative has no literal: the union fails
        ("(?:ab)?cd", {"cd"}),  # an optional group guarantees nothing
        ("(?:ab){2}", {"ab"}),
        ("a+", {"a"}),
        (r"加我\s*(?:微信|wechat)", {"加我"}),
        (r"GUARANTEED\s+\d+%", {"guaranteed"}),  # case-folded like the text
    ],
)
def test_required_literals(pattern: str, literals: set[str]) -> None:
    assert required_literals(parse(pattern)) == frozenset(literals)


@pytest.mark.parametrize("pattern", [r"\d{8}", r"(?:a|\d)+", ""])
def test_no_literal_is_required(pattern: str) -> None:
    assert required_literals(parse(pattern)) is None
