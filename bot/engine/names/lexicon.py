"""The name word lists under models/names/, read once and folded the way text is matched."""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass
from pathlib import Path

import regex

from bot.engine.normalize import fold_char, is_cjk
from bot.engine.resources import models_dir

DATA_DIR = models_dir() / "names"
CUE_WINDOW = 30  # characters either side of a name in which a cue word counts as "nearby"
_LONGEST_CUE = 80  # longer identifier-shaped matches (a 200-digit run) may be missed as cues

# Identifier and contact shapes count as cues too: the screener asks for names only when a
# personal-data rule has fired, and the name should then read as "near an identifier".
_IDENTIFIER_SHAPES = (
    r"\d{7,}",  # long digit runs: mainland mobile, ID, account numbers
    r"(?<!\d)\d{4}[ -]?\d{4}(?!\d)",  # Hong Kong phone numbers
    r"(?<![A-Za-z])[A-Za-z]{1,2}\d{6}\s?\(?[0-9Aa]\)?",  # HKID shape, checksum not needed here
    r"[\w.+-]+@[\w-]+\.[\w.]+",  # e-mail
)


def fold_cjk(text: str) -> str:
    """Traditional to Simplified for Han characters only; same length as ``text``.

    jieba's dictionary is Simplified, and one lexicon entry then covers both scripts. Latin
    letters keep their case (it is evidence for romanised names).
    """
    folded = "".join(_fold1(c) if is_cjk(c) else c for c in text)
    return folded if len(folded) == len(text) else text


def _fold1(char: str) -> str:
    out = fold_char(char)
    return out if len(out) == 1 else char


def _entries(path: Path) -> list[str]:
    """Whitespace-separated entries, ``#`` starts a comment line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [word for line in lines if not line.lstrip().startswith("#") for word in line.split()]


def _lines(path: Path) -> list[str]:
    """One entry per line (phrases keep their spaces), ``#`` starts a comment line."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def latin_words(phrase: str) -> tuple[str, ...]:
    """A Latin phrase as lower-case words: hyphens and spaces alike ("Tai-man" = "tai man")."""
    return tuple(w.lower() for w in regex.findall(r"[A-Za-z]+", phrase))


@dataclass(frozen=True, slots=True)
class NameLexicon:
    """Every word list name detection uses, folded for matching (Simplified, lower case)."""

    surnames_zh: frozenset[str]
    everyday_surnames_zh: frozenset[str]
    honorifics_zh: tuple[str, ...]  # longest first; Latin ones ("sir") in lower case
    given_stop_zh: frozenset[str]
    not_names_zh: frozenset[str]
    not_names_zh_longest: int
    surnames_latin: frozenset[str]
    syllables: frozenset[str]
    given_en: frozenset[str]
    titles_en: frozenset[str]
    place_org_words: frozenset[str]  # capitalised: Road, Holdings, Office
    place_org_words_lower: frozenset[str]  # also in lower case: road, hospital, school
    not_names_latin: dict[str, tuple[tuple[str, ...], ...]]  # first word -> phrases, longest first
    cues: regex.Pattern[str]

    @classmethod
    def load(cls, data_dir: Path = DATA_DIR) -> NameLexicon:
        """Read the lists from ``data_dir``; a missing file raises (the data ships with code)."""
        folded = [fold_cjk(w) for w in _entries(data_dir / "surnames_zh.txt")]
        not_zh = frozenset(fold_cjk(w) for w in _entries(data_dir / "not_names_zh.txt"))
        honorifics = {
            fold_cjk(w) if is_cjk(w[0]) else w.lower()
            for w in _entries(data_dir / "honorifics_zh.txt")
        }
        phrases: dict[str, list[tuple[str, ...]]] = {}
        for line in _lines(data_dir / "not_names_latin.txt"):
            words = latin_words(line)
            if words:
                phrases.setdefault(words[0], []).append(words)
        place_org = [w.lower() for w in _entries(data_dir / "place_org_words_en.txt")]
        cue_words = _entries(data_dir / "cues.txt")
        latin_cues = [regex.escape(w) for w in cue_words if not is_cjk(w[0])]
        han_cues = [regex.escape(w) for w in cue_words if is_cjk(w[0])]
        cue_pattern = "|".join(
            [
                rf"(?<![A-Za-z])(?:{'|'.join(sorted(latin_cues, key=len, reverse=True))})"
                r"(?![A-Za-z])",
                *sorted(han_cues, key=len, reverse=True),
                *_IDENTIFIER_SHAPES,
            ]
        )
        return cls(
            surnames_zh=frozenset(folded),
            everyday_surnames_zh=frozenset(
                fold_cjk(w) for w in _entries(data_dir / "surnames_zh_everyday.txt")
            ),
            honorifics_zh=tuple(sorted(honorifics, key=len, reverse=True)),
            given_stop_zh=frozenset(
                fold_cjk(w) for w in _entries(data_dir / "given_name_stop_chars_zh.txt")
            ),
            not_names_zh=not_zh,
            not_names_zh_longest=max((len(w) for w in not_zh), default=0),
            surnames_latin=_lower_set(data_dir / "surnames_romanised.txt"),
            syllables=_lower_set(data_dir / "syllables_cantonese.txt"),
            given_en=_lower_set(data_dir / "given_names_en.txt"),
            titles_en=_lower_set(data_dir / "titles_en.txt"),
            place_org_words=frozenset(w.rstrip("*") for w in place_org),
            place_org_words_lower=frozenset(w.rstrip("*") for w in place_org if w.endswith("*")),
            not_names_latin={
                first: tuple(sorted(set(found), key=len, reverse=True))
                for first, found in phrases.items()
            },
            cues=regex.compile(cue_pattern, regex.IGNORECASE),
        )

    def cue_spans(self, text: str) -> list[tuple[int, int]]:
        """Where cue words and identifier shapes sit in ``text``."""
        return [m.span() for m in self.cues.finditer(text)]


def cue_near(text: str, cues: list[tuple[int, int]], start: int, end: int) -> str | None:
    """The first cue within :data:`CUE_WINDOW` characters of ``text[start:end]``, if any."""
    # cues are sorted by start and short (an e-mail address at most): bisect, then walk.
    first = bisect.bisect_left(cues, (start - CUE_WINDOW - _LONGEST_CUE, 0))
    for cue_start, cue_end in itertools.islice(cues, first, None):
        if cue_start >= end + CUE_WINDOW:
            break
        if cue_end > start - CUE_WINDOW:
            if cue_start < end and start < cue_end:
                continue  # the name itself is not its own cue ("Tel" inside nothing, 客 in 客戶)
            return text[cue_start:cue_end]
    return None


def _lower_set(path: Path) -> frozenset[str]:
    return frozenset(w.lower() for w in _entries(path))
