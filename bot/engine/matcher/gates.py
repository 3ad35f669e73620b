"""Pattern gates: cheap necessary conditions that let most patterns skip most messages."""

from __future__ import annotations

import re._constants as sre_constants
from dataclasses import dataclass
from typing import Any

import regex

from bot.engine.matcher.literals import required_literals
from bot.engine.matcher.syntax import REPEATS, Items, parse


@dataclass(frozen=True, slots=True)
class PatternGate:
    """What a message must have before a pattern runs on it (nothing, when not analysable)."""

    min_digits: int
    literals: frozenset[str] | None
    digit_run: int = 0  # digits every match has in one run (at most 2 separators apart)


def analyse(source: str) -> PatternGate:
    """Cheap preconditions of a pattern: digits it needs and literals one of which must occur.

    Most messages contain neither, so most patterns never run: this keeps screening fast with
    many rules. A pattern the stdlib parser cannot read (``regex``-only syntax) simply always runs.
    """
    try:
        parsed = parse(source)
    except Exception:  # noqa: BLE001  (any parse failure just means "no gate")
        return PatternGate(0, None)
    literals = required_literals(parsed)
    # One letter or digit occurs in nearly every message; one symbol ('@') or one Chinese
    # character still rules out most of them.
    if literals is not None and any(
        len(x) < 2 and ((x.isascii() and x.isalnum()) or x.isspace()) for x in literals
    ):
        literals = None
    return PatternGate(_min_digits(parsed), literals, _DigitRun().longest(parsed))


_DIGIT_CLASSES = {sre_constants.CATEGORY_DIGIT}


def _is_digit_class(op: Any, av: Any) -> bool:
    if op is sre_constants.LITERAL:
        return isinstance(av, int) and chr(av).isdigit()
    if op is sre_constants.IN and isinstance(av, list):
        only_digits = True
        for item_op, item_av in av:
            if item_op is sre_constants.CATEGORY and item_av in _DIGIT_CLASSES:
                continue
            if item_op is sre_constants.RANGE and item_av[0] >= 48 and item_av[1] <= 57:
                continue
            if item_op is sre_constants.LITERAL and chr(item_av).isdigit():
                continue
            only_digits = False
        return only_digits
    return False


_DIGIT_RUN = regex.compile(r"\d(?:[^\p{L}\p{N}]{0,2}\d)*")
MAX_SEPARATORS = 2  # characters allowed between two digits of one run (both sides agree)


def longest_digit_run(text: str) -> int:
    """Most digits in one run of the text, digits at most two non-alphanumerics apart."""
    return max((sum(map(str.isdigit, m)) for m in _DIGIT_RUN.findall(text)), default=0)


class _DigitRun:
    """The most digits a pattern requires inside one run, by walking its syntax tree.

    Conservative by construction: anything it does not understand ends the run, which only
    lowers the requirement (and so only runs the pattern more often, never less).
    """

    def longest(self, items: Items) -> int:
        """The run length every match of ``items`` contains."""
        best, _current, _gap = self._walk(items, 0, 0, 0)
        return best

    def _walk(self, items: Items, best: int, current: int, gap: int) -> tuple[int, int, int]:
        for op, av in items:
            if _is_digit_class(op, av):
                current, gap = current + 1, 0
            elif self._separator(op, av):
                gap += 1
            elif op in REPEATS:
                best, current, gap = self._repeat(av, best, current, gap)
            elif op is sre_constants.SUBPATTERN and self._plain(list(av[-1])):
                best, current, gap = self._walk(list(av[-1]), best, current, gap)
            elif op is sre_constants.AT:
                continue  # anchors and boundaries match no characters
            else:
                current, gap = 0, 0
            if gap > MAX_SEPARATORS:
                current, gap = 0, 0
            best = max(best, current)
        return best, current, gap

    def _repeat(self, av: Any, best: int, current: int, gap: int) -> tuple[int, int, int]:
        """A repeat: a digit counts ``low`` times, a separator ``high``; else the run ends."""
        low, high, sub = av
        sub_items = list(sub)
        if len(sub_items) == 1 and _is_digit_class(*sub_items[0]):
            return best, current + low, 0 if low else gap
        if (
            len(sub_items) == 1
            and self._separator(*sub_items[0])
            and high != sre_constants.MAXREPEAT
        ):
            return best, current, gap + high
        if low >= 1 and high == low and self._plain(sub_items):
            for _ in range(low):
                best, current, gap = self._walk(sub_items, best, current, gap)
            return best, current, gap
        return best, 0, 0

    def _separator(self, op: Any, av: Any) -> bool:
        """One character that is never a letter or digit (a space, '-', '(', ')', '.', ...)."""
        if op is sre_constants.LITERAL:
            return not chr(av).isalnum()
        if op is sre_constants.IN:
            for item_op, item_av in av:
                if item_op is sre_constants.LITERAL and not chr(item_av).isalnum():
                    continue
                if item_op is sre_constants.CATEGORY and item_av is sre_constants.CATEGORY_SPACE:
                    continue
                return False
            return True
        return False

    def _plain(self, items: Items) -> bool:
        """Only digits, separators, and repeats of them: safe to walk inside."""
        for op, av in items:
            if _is_digit_class(op, av) or self._separator(op, av) or op is sre_constants.AT:
                continue
            if op in REPEATS and self._plain(list(av[2])):
                continue
            if op is sre_constants.SUBPATTERN and self._plain(list(av[-1])):
                continue
            return False
        return True


def _min_digits(items: Items) -> int:
    """Digits every match of ``items`` contains, anywhere."""
    total = 0
    for op, av in items:
        if _is_digit_class(op, av):
            total += 1
        elif op in REPEATS:
            low, _high, sub = av
            total += low * _min_digits(list(sub))
        elif op is sre_constants.SUBPATTERN:
            total += _min_digits(list(av[-1]))
        elif op is sre_constants.BRANCH:
            total += min(_min_digits(list(b)) for b in av[1])
    return total
