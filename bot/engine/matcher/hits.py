"""What passes from the prefilter to judging: literal roles, candidate hits, judged hits."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from bot.engine.rulebook.model import Rule


class Role(IntEnum):
    """What a literal found by the prefilter means for its rule."""

    TERM = 1
    NEAR = 2
    RAISE = 3
    LOWER = 4
    ALLOW = 5
    TRIGGER = 6  # a literal some pattern cannot match without
    EXCLUDE = 7


@dataclass(frozen=True, slots=True)
class Evaluated:
    """A rule hit after exclusions, checksum, proximity and context: kept or dropped, with why."""

    rule: Rule
    start: int  # ORIGINAL text offsets
    end: int
    score: float
    why: str
    dropped: bool


@dataclass(slots=True)
class Hit:
    """A candidate hit of one rule, before judging; offsets index the normalised text."""

    start: int  # normalised offsets
    end: int
    score: float
    source: str


# Prefilter result: (rule index, role, extra) -> every (start, end, literal) found; ``extra``
# is the pattern index of a TRIGGER and the exclude index of an EXCLUDE, else 0.
Found = dict[tuple[int, Role, int], list[tuple[int, int, str]]]
