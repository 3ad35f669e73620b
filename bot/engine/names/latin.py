"""Latin-script names: romanised Cantonese (Chan Tai Man, Mr Wong, Peter Chan), spaCy PERSONs."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import regex

from bot.engine.names.lexicon import NameLexicon, cue_near
from bot.engine.names.span import SPACY_WHY, NameSpan

TITLE_SURNAME = 0.85  # Mr Wong, Ms Chan Siu Ming
TITLE_WORD = 0.8  # Mr Smith: any capitalised word after a title
GIVEN_SURNAME = 0.8  # Peter Chan
FULL_NAME = 0.75  # Chan Tai Man, CHAN Tai-man
GIVEN_FIRST = 0.6  # Tai Man Chan (Western order)
SHORT_NAME = 0.45  # Chan Ming, chan tai man: weak alone
IN_CONTEXT = 0.7  # a weak one with a cue (phone, HKID, client...) nearby
SPACY_MULTI = 0.75  # spaCy PERSON of two or more words
SPACY_KNOWN_WORD = 0.6  # spaCy PERSON of one word that is a known given name or surname
SPACY_OTHER_WORD = 0.45  # spaCy PERSON of one unknown word: "Xiaomi" is one

_WORD = regex.compile(r"[A-Za-z]+")
_FULL_WIDTH: dict[int, str] = {code: chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)}
_FULL_WIDTH[0x3000] = " "  # ideographic space
# Words after which capitalised words are someone's name: "name Klaus Meyer", "户名 Li Na".
_NAMING = regex.compile(
    r"(?:(?<![A-Za-z])(?:name|named|holder|beneficiary|payee)|姓名|户名|戶名|名字|收款人|持有人)$",
    regex.IGNORECASE,
)
_NAME_TOKEN = regex.compile(r"(?:Mc|Mac|O['’])?[A-Z][a-z]+(?:[-'’][A-Za-z][a-z]*)*")


@dataclass(frozen=True, slots=True)
class Word:
    """One run of ASCII letters in the message."""

    start: int
    end: int
    text: str
    lower: str
    case: str  # "T" Title, "U" UPPER (2+ letters), "L" lower, "M" mixed (iPhone, McDonald)


def _case(text: str) -> str:
    if text[0].isupper() and (len(text) == 1 or text[1:].islower()):
        return "T"
    if text.isupper():
        return "U"
    return "L" if text.islower() else "M"


class LatinText:
    """A message's Latin words, and which of them belong to a known place or company name."""

    def __init__(self, lex: NameLexicon, text: str) -> None:
        """Split ``text`` into words and mark those inside a not-a-name phrase (Wong Tai Sin).

        Full-width letters and spaces (Ｍｒ　Ｗｏｎｇ, typed with a Chinese IME) become ASCII
        one for one, so offsets still index the original text.
        """
        self.text = text.translate(_FULL_WIDTH)
        self.words = [
            Word(m.start(), m.end(), m.group(), m.group().lower(), _case(m.group()))
            for m in _WORD.finditer(self.text)
        ]
        self.starts = [w.start for w in self.words]
        self.blocked: set[int] = set()
        lowers = [w.lower for w in self.words]
        for index, word in enumerate(lowers):
            for phrase in lex.not_names_latin.get(word, ()):
                if tuple(lowers[index : index + len(phrase)]) == phrase and self._joined(
                    index, len(phrase)
                ):
                    self.blocked.update(range(index, index + len(phrase)))
                    break

    def gap(self, index: int) -> str:
        """What separates word ``index`` from the next one."""
        return self.text[self.words[index].end : self.words[index + 1].start]

    def _joined(self, index: int, count: int) -> bool:
        return all(self.gap(k) in (" ", "-") for k in range(index, index + count - 1))


class LatinNames:
    """Romanised Chinese names and the filter for spaCy's PERSON entities; pure, thread-safe."""

    def __init__(self, lexicon: NameLexicon) -> None:
        """Keep the lower-cased word lists."""
        self._lex = lexicon

    def analyse(self, text: str) -> LatinText:
        """Split ``text`` into words once for both :meth:`find` and :meth:`keep_person`."""
        return LatinText(self._lex, text)

    def worth_spacy(self, latin: LatinText) -> bool:
        """Whether spaCy could find a PERSON here that would be kept.

        It needs a capitalised word that is not a listed place, company, app, month, title or
        place/company word, and not merely capitalised because it starts a sentence (a lone
        unknown word there is dropped anyway); listed given names and surnames always count,
        in any position and also in capitals (CHAN). Pure CJK, digits, lower case and
        "HKID"/"HSBC"-style acronyms never reach spaCy: most messages skip it.
        """
        lex = self._lex
        for index, word in enumerate(latin.words):
            if index in latin.blocked or word.case not in "TU" or len(word.text) < 2:
                continue
            if word.lower in lex.given_en or word.lower in lex.surnames_latin:
                return True
            if word.case == "U" or word.lower in lex.titles_en:
                continue
            if word.lower in lex.place_org_words:
                continue
            if not _sentence_start(latin.text, word.start):
                return True
        return False

    def find(self, latin: LatinText, cues: list[tuple[int, int]]) -> list[NameSpan]:
        """Romanised names: title + surname, given + surname, surname + syllables."""
        found: list[NameSpan] = []
        for index, word in enumerate(latin.words):
            if index in latin.blocked:
                continue
            found.extend(self._at(latin, index, word, cues))
        return found

    def keep_person(
        self, latin: LatinText, tokens: Sequence[tuple[int, str]], cues: list[tuple[int, int]]
    ) -> NameSpan | None:
        """Judge one spaCy PERSON entity given as (offset, text) tokens; None to drop it.

        spaCy runs a name into what follows ("Mary Lee HKID A123456(3"), so only the leading
        run of name-shaped tokens is kept; places, companies and months it mistakes for people
        are dropped.
        """
        kept = self._leading_name_tokens(tokens)
        if not kept or (len(kept) == 1 and len(kept[0][1]) < 2):
            return None
        start, end = kept[0][0], kept[-1][0] + len(kept[-1][1])
        first = bisect.bisect_left(latin.starts, start)
        indices = list(range(first, bisect.bisect_left(latin.starts, end)))
        if not indices or self._in_place_or_org(latin, indices):
            return None
        if len(kept) >= 2:
            return NameSpan(start, end, SPACY_MULTI, SPACY_WHY)
        return self._one_word_person(latin, cues, start, end, latin.words[indices[0]].lower)

    def _leading_name_tokens(self, tokens: Sequence[tuple[int, str]]) -> list[tuple[int, str]]:
        """The name-shaped tokens an entity starts with, after any title in it."""
        titles = [k for k, (_, token) in enumerate(tokens) if token.lower() in self._lex.titles_en]
        if titles:
            tokens = tokens[titles[0] + 1 :]  # "Call Mrs Yuen": the title pattern covers it
        kept: list[tuple[int, str]] = []
        for offset, token in tokens:
            if not (_NAME_TOKEN.fullmatch(token) or token.lower() in self._lex.surnames_latin):
                break
            kept.append((offset, token))
        return kept

    def _in_place_or_org(self, latin: LatinText, indices: list[int]) -> bool:
        """The words are (part of) a known place or company, or one follows them."""
        if any(k in latin.blocked for k in indices) or self._place_or_org_after(
            latin, indices[-1]
        ):
            return True
        # Kerry Properties, Lee Garden
        return any(latin.words[k].lower in self._lex.place_org_words for k in indices[1:])

    def _one_word_person(
        self, latin: LatinText, cues: list[tuple[int, int]], start: int, end: int, word: str
    ) -> NameSpan | None:
        """A one-word PERSON: a known name counts; an unknown word only mid-sentence."""
        lex = self._lex
        if word in lex.given_en or word in lex.surnames_latin:
            return _with_cue(
                latin.text, cues, NameSpan(start, end, SPACY_KNOWN_WORD, f"{SPACY_WHY} (one word)")
            )
        if _sentence_start(latin.text, start):
            return None  # "Email compliance...", "Concert tickets...": capitalised by position
        return NameSpan(start, end, SPACY_OTHER_WORD, f"{SPACY_WHY} (one unknown word)")

    # -- lexicon patterns ---------------------------------------------------------------------
    def _at(
        self, latin: LatinText, index: int, word: Word, cues: list[tuple[int, int]]
    ) -> list[NameSpan]:
        lex = self._lex
        out: list[NameSpan] = []
        if word.lower in lex.titles_en and word.case in "TU":
            span = self._after_title(latin, index, word)
            if span is not None:
                out.append(span)
        if word.lower in lex.given_en and word.case in "TU":
            nxt = self._next(latin, index, " ")
            if nxt is not None and self._is_surname(latin, nxt):
                end = self._syllables_after(latin, nxt)[0]
                span = NameSpan(
                    word.start,
                    latin.words[end].end,
                    GIVEN_SURNAME,
                    f"English given name {word.text} + romanised surname {latin.words[nxt].text}",
                )
                if not self._place_or_org_after(latin, end):
                    out.append(span)
        if word.lower in lex.surnames_latin:
            span = self._surname_first(latin, index, word, cues)
            if span is not None:
                out.append(span)
        if word.case == "T" and index not in latin.blocked:
            span = self._after_naming_word(latin, index, word)
            if span is not None:
                out.append(span)
        if word.lower in lex.syllables and word.case == "T":
            span = self._given_first(latin, index, cues)
            if span is not None:
                out.append(span)
        return out

    def _after_naming_word(self, latin: LatinText, index: int, word: Word) -> NameSpan | None:
        """Klaus Meyer in "name Klaus Meyer", "戶名: Li Na"; May in "阿 May" (Cantonese)."""
        # Only a short look-back: slicing the whole prefix would make long texts quadratic.
        window = latin.text[max(0, word.start - 24) : word.start]
        before = window.rstrip(" :：")
        if before.endswith("阿") and word.case == "T":
            return NameSpan(
                word.start - (len(window) - len(before)) - 1,
                word.end,
                IN_CONTEXT,
                f"prefix 阿 + {word.text}",
            )
        naming = _NAMING.search(before)
        if naming is None or len(window) - len(before) > 2:
            return None
        end = index
        while (
            end + 1 < len(latin.words)
            and end - index < 3
            and latin.gap(end) == " "
            and latin.words[end + 1].case == "T"
            and end + 1 not in latin.blocked
        ):
            end += 1
        if end == index or self._place_or_org_after(latin, end):
            return None  # one capitalised word after "name" may be anything ("name Apple")
        if any(latin.words[k].lower in self._lex.place_org_words for k in range(index, end + 1)):
            return None
        return NameSpan(
            word.start, latin.words[end].end, IN_CONTEXT, f"after {naming.group().strip()!r}"
        )

    def _after_title(self, latin: LatinText, index: int, word: Word) -> NameSpan | None:
        """Mr Wong, Ms. Chan Siu Ming, Dr Lee, Mr Peter Chan, Mr Smith."""
        if index + 1 >= len(latin.words) or latin.gap(index) not in (" ", ". ", "."):
            return None
        nxt = index + 1
        name = latin.words[nxt]
        if name.case not in "TU" or nxt in latin.blocked or name.lower in self._lex.titles_en:
            return None
        if name.lower in self._lex.place_org_words:
            return None
        end = nxt
        if self._is_surname(latin, nxt):
            end = self._syllables_after(latin, nxt)[0]
            why = f"title {word.text} + romanised surname {name.text}"
            score = TITLE_SURNAME
        else:
            after = self._next(latin, nxt, " ")
            if (
                name.lower in self._lex.given_en
                and after is not None
                and latin.words[after].case == "T"
            ):
                end = after  # Mr John Smith
            words = latin.text[name.start : latin.words[end].end]
            why = f"title {word.text} + capitalised {words}"
            score = TITLE_WORD
        if self._place_or_org_after(latin, end):
            return None
        return NameSpan(word.start, latin.words[end].end, score, why)

    def _surname_first(
        self, latin: LatinText, index: int, word: Word, cues: list[tuple[int, int]]
    ) -> NameSpan | None:
        """Chan Tai Man, CHAN Tai-man, CHAN, Tai Man, chan tai man; Chan Ming (weak)."""
        if word.case not in "TUL":
            return None
        end, count = self._syllables_after(latin, index)
        if count == 0 or self._place_or_org_after(latin, end):
            return None
        span_end = latin.words[end].end
        why = f"romanised surname {word.text} + {count} syllable{'s' if count > 1 else ''}"
        if count >= 2 and word.case in "TU":
            return NameSpan(word.start, span_end, FULL_NAME, why)
        if count >= 2 or word.case in "TU":
            return _with_cue(latin.text, cues, NameSpan(word.start, span_end, SHORT_NAME, why))
        return None

    def _given_first(
        self, latin: LatinText, index: int, cues: list[tuple[int, int]]
    ) -> NameSpan | None:
        """Tai Man Chan: two given-name syllables, then the surname (Western order)."""
        if (
            index > 0
            and latin.words[index - 1].lower in self._lex.surnames_latin
            and latin.gap(index - 1) in (" ", "-")
        ):
            return None  # already read as surname first
        second = self._next(latin, index, " -")
        if second is None or latin.words[second].lower not in self._lex.syllables:
            return None
        if latin.words[second].case != "T" and latin.gap(index) != "-":
            return None
        surname = self._next(latin, second, " ")
        if surname is None or latin.words[surname].case != "T":
            return None
        if latin.words[surname].lower not in self._lex.surnames_latin:
            return None
        if self._place_or_org_after(latin, surname):
            return None
        first = latin.words[index]
        span = NameSpan(
            first.start,
            latin.words[surname].end,
            GIVEN_FIRST,
            f"2 syllables + romanised surname {latin.words[surname].text} (given name first)",
        )
        return _with_cue(latin.text, cues, span)

    # -- small helpers ------------------------------------------------------------------------
    def _next(self, latin: LatinText, index: int, gaps: str) -> int | None:
        """The next word when it follows ``index`` after one of the ``gaps`` characters."""
        nxt = index + 1
        if nxt >= len(latin.words) or nxt in latin.blocked or latin.gap(index) not in gaps:
            return None
        return nxt if latin.gap(index) else None

    def _is_surname(self, latin: LatinText, index: int) -> bool:
        word = latin.words[index]
        return word.lower in self._lex.surnames_latin and word.case in "TU"

    def _syllables_after(self, latin: LatinText, index: int) -> tuple[int, int]:
        """(index of the last word, syllables counted) after the surname at ``index``."""
        surname = latin.words[index]
        end, count = index, 0
        while count < 2:
            nxt = end + 1
            if nxt >= len(latin.words) or nxt in latin.blocked:
                break
            gap = latin.gap(end)
            word = latin.words[nxt]
            comma_ok = count == 0 and gap == ", " and surname.case == "U"  # CHAN, Tai Man
            if gap not in (" ", "-") and not comma_ok:
                break
            if word.lower not in self._lex.syllables or not _case_fits(surname.case, word, gap):
                break
            end, count = nxt, count + 1
        return end, count

    def _place_or_org_after(self, latin: LatinText, index: int) -> bool:
        """Wong Tai Sin Road, Sun Hung Kai Properties: a place or organisation word follows."""
        nxt = index + 1
        if nxt >= len(latin.words) or latin.gap(index) != " ":
            return False
        word = latin.words[nxt]
        if word.case == "L":
            return word.lower in self._lex.place_org_words_lower
        return word.case in "TU" and word.lower in self._lex.place_org_words


def _case_fits(surname_case: str, word: Word, gap: str) -> bool:
    """Syllables follow the surname's case; after a hyphen lower case is normal (Tai-man)."""
    if surname_case == "L":
        return word.case == "L"
    if gap == "-" and word.case == "L":
        return True
    return word.case == "T" or (word.case == "U" and surname_case == "U")


def _sentence_start(text: str, offset: int) -> bool:
    """True when nothing but spaces, quotes or an end of sentence comes before ``offset``."""
    before = text[max(0, offset - 16) : offset].rstrip(" \t\"'“‘(")
    if not before and offset > 16:
        return _sentence_start(text, offset - 16)
    return not before or before[-1] in ".!?。！？\n:：-•*"


def _with_cue(text: str, cues: list[tuple[int, int]], span: NameSpan) -> NameSpan:
    """Raise a weak name to :data:`IN_CONTEXT` when a cue word or identifier is nearby."""
    if span.score >= IN_CONTEXT:
        return span
    cue = cue_near(text, cues, span.start, span.end)
    if cue is None:
        return span
    return NameSpan(span.start, span.end, IN_CONTEXT, f"{span.why}; cue {cue!r} nearby")
