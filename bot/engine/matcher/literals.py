"""Literals a pattern cannot match without: the candidates for its prefilter trigger set."""

from __future__ import annotations

import re._constants as sre_constants
from collections.abc import Iterator
from typing import Any

from bot.engine.matcher.syntax import REPEATS, Items


def required_literals(items: Items) -> frozenset[str] | None:
    """A set of literals at least one of which every match contains (best found), or None."""
    best: frozenset[str] | None = None
    for candidate in _candidates(items):
        # Strictly better only: of equally selective sets the first found is kept.
        if candidate and (best is None or _selectivity(candidate) > _selectivity(best)):
            best = candidate
    return best


def _candidates(items: Items) -> Iterator[frozenset[str] | None]:
    """Every trigger set the sequence guarantees, left to right (None or empty: none)."""
    run: list[str] = []
    for index, (op, av) in enumerate(items):
        if op is sre_constants.LITERAL and isinstance(av, int):
            run.append(chr(av).casefold())
            continue
        if run:
            yield frozenset({"".join(run)})
        run = []
        yield from _candidates_of(items, index)
    if run:
        yield frozenset({"".join(run)})


def _candidates_of(items: Items, index: int) -> Iterator[frozenset[str] | None]:
    """Trigger sets of the one non-literal item at ``index`` (a group, repeat or branch)."""
    op, av = items[index]
    if op is sre_constants.SUBPATTERN:
        yield required_literals(list(av[-1]))
    elif op in REPEATS:
        low, _high, sub = av
        if low >= 1:  # an optional repeat guarantees nothing
            yield required_literals(list(sub))
    elif op is sre_constants.BRANCH:
        yield from _branch_candidates(items, index, av[1])


def _branch_candidates(items: Items, index: int, branches: list[Any]) -> Iterator[frozenset[str]]:
    """An alternation: the union of its alternatives' sets, when each alternative has one."""
    options = [required_literals(list(b)) for b in branches]
    known = [o for o in options if o]
    if len(known) == len(options):
        yield frozenset().union(*known)
    # The parser factors common prefixes ("wa|wts" -> "w" + ("a"|"ts")): glue the
    # literal run before the branch back onto each all-literal alternative.
    previous = items[index - 1] if index else None
    tails = [_all_literal(list(b)) for b in branches]
    if (
        previous is not None
        and previous[0] is sre_constants.LITERAL
        and all(t is not None for t in tails)
    ):
        prefix = _literal_run_before(items, index)
        yield frozenset(prefix + t for t in tails if t is not None)


# Words so common that, as the only trigger of a pattern, they gate almost nothing.
_COMMON_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "at",
        "be",
        "by",
        "do",
        "for",
        "he",
        "i",
        "if",
        "in",
        "is",
        "it",
        "me",
        "my",
        "no",
        "of",
        "on",
        "or",
        "so",
        "the",
        "to",
        "up",
        "us",
        "we",
        "you",
    ]
)


def _selectivity(literals: frozenset[str]) -> tuple[int, int]:
    """How rarely a trigger set fires: its weakest literal first, then fewer literals."""
    weakest = min(_strength(x) for x in literals)
    return weakest, -len(literals)


def _strength(literal: str) -> int:
    """Roughly how rare a literal is: one Latin letter or digit is worthless as a trigger."""
    if len(literal) == 1 and literal.isascii() and (literal.isalnum() or literal.isspace()):
        return 0
    return 1 if literal.strip() in _COMMON_WORDS else len(literal)


def _all_literal(items: Items) -> str | None:
    if items and all(op is sre_constants.LITERAL for op, _ in items):
        return "".join(chr(av).casefold() for _, av in items)
    return None


def _literal_run_before(items: Items, index: int) -> str:
    chars: list[str] = []
    position = index - 1
    while position >= 0 and items[position][0] is sre_constants.LITERAL:
        chars.append(chr(items[position][1]).casefold())
        position -= 1
    return "".join(reversed(chars))
