"""What the intent model sees: hashed unit n-grams of the normalised text, in bounded windows.

A "unit" is one Han character, one Latin word, one number, or one symbol or emoji. Unit 1-3
grams give character n-grams for Chinese (which has no spaces) and word n-grams for English,
in one scheme for code-mixed text; skip-grams (a unit, any unit, a unit) catch phrases with a
word in between ("load *the* boat", "加*我*微信"); the first and last unit of a message mark
openings and sign-offs; letter 3-grams inside Latin words add robustness to misspellings
("whatsap", "telegrm"). Digits are one shape ("0") so no phone number or price is
learnt by heart. Every feature remembers the units it came from, so the model can say which
phrases weighed most.

Long messages are cut into overlapping windows of :data:`WINDOW_UNITS` units, each scored on
its own: a cue at the end of a 100 KB paste counts as much as one in a one-line message.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import regex

HASH_BITS = 20
HASH_SIZE = 1 << HASH_BITS
WINDOW_UNITS = 96  # about a long chat message; longer text is scored window by window
WINDOW_STRIDE = 64  # windows overlap, so a phrase across a cut is still seen whole
MAX_WINDOWS = 4096  # a 1 MB paste at most; beyond that the tail is not modelled (said in why)
# Part of the model version: features and weights must agree.
FEATURE_VERSION = "units-1.3+skip+ends+sub3+h20"

_UNIT = regex.compile(r"\p{Han}|[\p{L}\p{M}]+|\p{N}+(?:[.,:/]\p{N}+)*|[^\s\p{L}\p{M}\p{N}]")
_LATIN = regex.compile(r"[a-z]{4,}")


@dataclass(frozen=True, slots=True)
class Window:
    """One window of a message: hashed feature indices and where each came from."""

    indices: tuple[int, ...]  # distinct feature indices in [0, HASH_SIZE)
    spans: tuple[tuple[int, int], ...]  # per index: (start, end) offsets in the normalised text


@dataclass(frozen=True, slots=True)
class _Unit:
    text: str  # what the model sees (digits folded to one shape)
    start: int
    end: int


def _units(text: str) -> list[_Unit]:
    out = []
    for match in _UNIT.finditer(text):
        piece = match.group()
        shown = "0" if piece[0].isdigit() else piece
        out.append(_Unit(shown, match.start(), match.end()))
    return out


def _hash(feature: str) -> int:
    # crc32 is stable across processes and Python versions (str hash is salted per process).
    return zlib.crc32(feature.encode("utf-8")) & (HASH_SIZE - 1)


def _window_features(units: list[_Unit]) -> Window:
    found: dict[int, tuple[int, int]] = {}

    def add(feature: str, start: int, end: int) -> None:
        index = _hash(feature)
        if index not in found:
            found[index] = (start, end)

    add("<bias>", units[0].start if units else 0, units[0].start if units else 0)
    words = [u.text for u in units]
    for i, unit in enumerate(units):
        add(f"1:{words[i]}", unit.start, unit.end)
        if i + 1 < len(units):
            add(f"2:{words[i]} {words[i + 1]}", unit.start, units[i + 1].end)
        if i + 2 < len(units):
            add(f"3:{words[i]} {words[i + 1]} {words[i + 2]}", unit.start, units[i + 2].end)
            add(f"s:{words[i]} _ {words[i + 2]}", unit.start, units[i + 2].end)
        if _LATIN.fullmatch(unit.text):
            padded = f"<{unit.text}>"
            for j in range(len(padded) - 2):
                add(f"c:{padded[j : j + 3]}", unit.start, unit.end)
    if units:
        add(f"first:{words[0]}", units[0].start, units[0].end)
        add(f"last:{words[-1]}", units[-1].start, units[-1].end)
    return Window(tuple(found), tuple(found.values()))


@dataclass(frozen=True, slots=True)
class Extraction:
    """A message's windows, and whether it was too long to model to the end."""

    windows: tuple[Window, ...]
    truncated: bool


def extract(text: str) -> Extraction:
    """The windows of normalised ``text`` (one for a chat-sized message; never none)."""
    units = _units(text)
    if len(units) <= WINDOW_UNITS:
        return Extraction((_window_features(units),), truncated=False)
    last = len(units) - WINDOW_UNITS
    starts = list(range(0, last + 1, WINDOW_STRIDE))
    if starts[-1] != last:
        starts.append(last)  # the final window always ends at the last unit
    kept = starts[:MAX_WINDOWS]
    return Extraction(
        tuple(_window_features(units[s : s + WINDOW_UNITS]) for s in kept),
        truncated=len(kept) < len(starts),
    )
