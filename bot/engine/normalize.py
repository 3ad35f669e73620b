"""Normalised views of a message that defeat evasion, with a map back to original offsets."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path

import ahocorasick_rs
import regex

# Zero-width and bidi characters are used to split words so that filters miss them
# ("what\u200bsapp"); they carry no meaning in chat text, so they are dropped.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Co", "Cs", "Cn"})

# Characters that stand in for letters in the compact view only ("wh@ts app", "$ignal").
# They are not folded in the main view, where '@' must stay an '@' for e-mail addresses.
_LEET = {"@": "a", "$": "s"}
_LEET_TABLE = str.maketrans(_LEET)
# Everything that is not a letter or digit (\w minus "_"), and its complement: the compact view
# and its map back must agree character for character. (str.isalnum() disagrees with \w on
# combining marks such as the emoji variation selector in "❤️".)
_NOT_ALNUM = regex.compile(r"[\W_]+")
_ALNUM = regex.compile(r"[^\W_]")


@functools.cache
def _simplified_map() -> dict[str, str]:
    """Character-level Traditional (and Hong Kong variant) to Simplified table from OpenCC data.

    Folding character by character keeps the text the same length, so offsets stay simple,
    and lets one lexicon entry match both scripts (穩賺 and 稳赚).
    """
    import opencc  # noqa: PLC0415  (data files only; imported lazily to keep start-up light)

    dictionary = Path(opencc.__file__).parent / "dictionary"
    table: dict[str, str] = {}
    for line in (dictionary / "TSCharacters.txt").read_text(encoding="utf-8").splitlines():
        parts = line.lstrip("\ufeff").split("\t")
        if len(parts) == 2 and len(parts[0]) == 1:
            simplified = parts[1].split(" ")[0]
            if len(simplified) == 1:
                table[parts[0]] = simplified
    # HKVariants lists "standard<TAB>hong-kong form"; map the HK form back, then simplify.
    for line in (dictionary / "HKVariants.txt").read_text(encoding="utf-8").splitlines():
        parts = line.lstrip("\ufeff").split("\t")
        if len(parts) == 2 and len(parts[0]) == 1:
            for variant in parts[1].split(" "):
                if len(variant) == 1 and variant not in table:
                    table[variant] = table.get(parts[0], parts[0])
    # Common variant characters in ID-card wording: 証 (Japanese/HK form of 證).
    table.setdefault("証", "证")
    return table


@functools.lru_cache(maxsize=65536)
def fold_char(char: str) -> str:
    """Fold one character: NFKC, case fold, Traditional to Simplified; "" for invisibles."""
    if char.isspace():
        return " "
    if unicodedata.category(char) in _INVISIBLE_CATEGORIES:
        return ""
    folded = unicodedata.normalize("NFKC", char).casefold()
    if len(folded) == 1 and folded.isspace():
        return " "
    table = _simplified_map()
    return "".join(table.get(c, c) for c in folded)


def is_word_char(char: str) -> bool:
    """Letters and digits that form Latin-script words (CJK has no word boundaries)."""
    return char.isalnum() and not is_cjk(char)


def is_cjk(char: str) -> bool:
    """True for Han ideographs and the Cantonese-specific characters that matter here."""
    code = ord(char)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x3134F
        or 0xF900 <= code <= 0xFAFF
    )


class NormalizedText:
    """A message in three forms: original, normalised, and compact (separators removed).

    ``origin[i]`` is the original offset of normalised character ``i``; ``compact_origin[j]``
    is the normalised offset of compact character ``j``. The compact view is built on first
    use: most messages never need it.
    """

    __slots__ = ("_compact", "_compact_origin", "origin", "original", "text")

    def __init__(self, original: str, text: str, origin: Sequence[int]) -> None:
        """Use :meth:`build`; this only stores the views."""
        self.original = original
        self.text = text
        self.origin = origin
        self._compact: str | None = None
        self._compact_origin: tuple[int, ...] = ()

    @classmethod
    def build(cls, original: str, aliases: AliasTable | None = None) -> NormalizedText:
        """Normalise ``original``: fold characters, collapse spaces, apply aliases."""
        origin: Sequence[int]
        if (
            original.isascii()
            and original.isprintable()
            and "  " not in original
            and original == original.strip()
        ):
            # Fast path (most chat lines): lower-casing is the whole fold and offsets are 1:1.
            text = original.lower()
            origin = range(len(original))
        else:
            folded = list(map(fold_char, original))
            text = "".join(folded)
            if (
                folded
                and min(map(len, folded)) == 1
                and max(map(len, folded)) == 1
                and "  " not in text
                and text[0] != " "
                and text[-1] != " "
            ):
                # Every character folded to exactly one: offsets are still 1:1 (most
                # Chinese and full-width text), so the per-character loop is not needed.
                origin = range(len(original))
            else:
                text, origin = _fold_slow(original)
        if aliases is not None:
            text, origin = aliases.apply(text, origin)
        return cls(original, text, origin)

    @property
    def compact(self) -> str:
        """The normalised text without separators, with stand-ins read as letters."""
        if self._compact is None:
            # Built in C (translate + sub); positions are only worked out when a compact
            # match needs mapping back, which is rare.
            self._compact = _NOT_ALNUM.sub("", self.text.translate(_LEET_TABLE))
        return self._compact

    def _compact_positions(self) -> tuple[int, ...]:
        if not self._compact_origin:
            translated = self.text.translate(_LEET_TABLE)
            self._compact_origin = tuple(m.start() for m in _ALNUM.finditer(translated))
        return self._compact_origin

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a normalised span ``[start, end)`` to a span of the original text."""
        if start >= end:
            position = self.origin[start] if start < len(self.origin) else len(self.original)
            return position, position
        # A folded character may come from a multi-unit original (NFKC "㈱" -> "(株)");
        # extend to the end of the last original character that produced the span.
        return self.origin[start], self.origin[end - 1] + 1

    def compact_to_text(self, start: int, end: int) -> tuple[int, int]:
        """Map a compact span ``[start, end)`` to a normalised span."""
        positions = self._compact_positions()
        return positions[start], positions[end - 1] + 1


def _fold_slow(original: str) -> tuple[str, list[int]]:
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(original):
        if char.isascii() and char.isalnum():
            chars.append(char.lower())
            origin.append(index)
            continue
        for folded in fold_char(char):
            if folded == " " and (not chars or chars[-1] == " "):
                continue  # collapse runs of white space, drop leading space
            chars.append(folded)
            origin.append(index)
    if chars and chars[-1] == " ":
        chars.pop()
        origin.pop()
    return "".join(chars), origin


class AliasTable:
    """Spellings folded to one canonical form before matching ("vx", "v信", "威信" -> "微信")."""

    def __init__(self, aliases: Mapping[str, str]) -> None:
        """Build from ``{alias: canonical}``; both are folded like message text."""
        folded = {fold_char_string(a): fold_char_string(c) for a, c in aliases.items()}
        self._canonical = {a: c for a, c in folded.items() if a and a != c}
        self._keys = list(self._canonical)
        self._matcher = (
            ahocorasick_rs.AhoCorasick(
                self._keys, matchkind=ahocorasick_rs.MatchKind.LeftmostLongest
            )
            if self._keys
            else None
        )

    def apply(self, text: str, origin: Sequence[int]) -> tuple[str, Sequence[int]]:
        """Replace whole-word aliases in ``text``; keep offsets pointing at the alias span."""
        if self._matcher is None:
            return text, origin
        out: list[str] = []
        out_origin: list[int] = []
        position = 0
        for key_index, start, end in self._matcher.find_matches_as_indexes(text):
            alias = self._keys[key_index]
            if not literal_bounded(text, start, end, alias):
                continue
            out.append(text[position:start])
            out_origin.extend(origin[position:start])
            canonical = self._canonical[alias]
            out.append(canonical)
            # Every canonical character points into the alias; the last one at its end,
            # so a finding covering the canonical word covers the whole alias.
            out_origin.extend([origin[start]] * (len(canonical) - 1) + [origin[end - 1]])
            position = end
        if position == 0:
            return text, origin
        out.append(text[position:])
        out_origin.extend(origin[position:])
        return "".join(out), out_origin


def fold_char_string(value: str) -> str:
    """Fold a lexicon entry character by character and collapse its spaces."""
    return " ".join("".join(fold_char(c) for c in value).split())


def literal_bounded(text: str, start: int, end: int, literal: str) -> bool:
    """Latin-script ends of a literal must not be glued to other letters or digits (CJK may)."""
    if is_word_char(literal[0]) and start > 0 and is_word_char(text[start - 1]):
        return False
    return not (is_word_char(literal[-1]) and end < len(text) and is_word_char(text[end]))
