"""The per-message regex budget: a slow pattern is skipped and named, the rest still run."""

import regex

from bot.engine.matcher.deadline import Deadline

CATASTROPHIC = regex.compile(r"(a|aa)+$")
SLOW_TEXT = "a" * 40 + "b"


def test_a_spent_budget_still_gives_each_regex_a_millisecond() -> None:
    assert Deadline(0.05, 0.0).timeout() == 0.001


def test_pos_and_endpos_limit_the_search_without_slicing() -> None:
    deadline = Deadline(0.05, 0.5)
    assert deadline.finditer(regex.compile("a"), "banana", "t", 2) == [(3, 4), (5, 6)]
    assert deadline.finditer(regex.compile("a"), "banana", "t", 0, 3) == [(1, 2)]
    # A look-behind still sees the text before ``pos``.
    assert deadline.finditer(regex.compile("(?<=b)a"), "banana", "t", 1) == [(1, 2)]


def test_a_timed_out_regex_finds_nothing_and_is_named() -> None:
    deadline = Deadline(0.01, 0.5)
    assert deadline.finditer(CATASTROPHIC, SLOW_TEXT, "rule/pattern") == []
    assert deadline.search(CATASTROPHIC, SLOW_TEXT, "rule/allow") is False
    assert deadline.errors == [
        "rule/pattern: regex timed out; this pattern was skipped on this message",
        "rule/allow: regex timed out; this pattern was skipped on this message",
    ]
