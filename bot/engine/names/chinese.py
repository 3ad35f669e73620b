"""Chinese names: a surname lexicon read against jieba's segmentation (陳大文, 陳生, 黃小姐)."""

from __future__ import annotations

from dataclasses import dataclass

import regex
import rjieba

from bot.engine.names.lexicon import NameLexicon, cue_near, fold_cjk
from bot.engine.names.span import NameSpan

# Scores. A title after a surname is the strongest evidence in Hong Kong chat (陳生, 李太).
HONORIFIC = 0.85
NAME_IN_CONTEXT = 0.7  # a whole name with a cue (client, ID, phone...) nearby
JIEBA_NAME = 0.5  # jieba reads a whole name (nr) but nothing nearby says "person"
BARE = 0.4  # surname + one or two characters, nothing else
PREFIX_AH = 0.7  # 阿陳: Cantonese way to call a person by surname
PREFIX_WEAK = 0.5  # 老王, 小陳 (小林 may be a small forest)

_PERSONAL_TITLES = frozenset({"先生", "小姐", "太太", "女士", "夫人"})
_NAME_TAGS = frozenset({"nr", "nrfg"})  # jieba: person name; "nrt" (transliterated) is not
_GIVEN_TAGS = frozenset({"nr", "nrfg", "nz"})  # a word after a lone surname that may be a name
_HAN = regex.compile(r"\p{Han}")
_LATIN = regex.compile(r"[A-Za-z]")


@dataclass(frozen=True, slots=True)
class _Token:
    start: int
    word: str
    tag: str

    @property
    def end(self) -> int:
        return self.start + len(self.word)


def _is_word(token: _Token) -> bool:
    """A dictionary word of two or more characters that jieba does not read as a name."""
    return (
        len(token.word) >= 2 and token.tag not in _NAME_TAGS and bool(rjieba.has_word(token.word))
    )


class ChineseNames:
    """Finds Chinese names in Han-script text; pure and thread-safe."""

    def __init__(self, lexicon: NameLexicon) -> None:
        """Keep the folded word lists."""
        self._lex = lexicon
        self._first_chars = frozenset(s[0] for s in lexicon.surnames_zh)

    def find(self, text: str, cues: list[tuple[int, int]]) -> list[NameSpan]:
        """Names in ``text`` (offsets into it); ``cues`` are from :meth:`NameLexicon.cue_spans`."""
        if not _HAN.search(text):
            return []
        return _Scan(self._lex, self._first_chars, text, cues).run()


class _Scan:
    """One pass over one message: jieba tokens, then each surname position in turn."""

    def __init__(
        self,
        lex: NameLexicon,
        first_chars: frozenset[str],
        text: str,
        cues: list[tuple[int, int]],
    ) -> None:
        self.lex = lex
        self.first_chars = first_chars
        self.text = text
        self.folded = fold_cjk(text)
        self.cues = cues
        self.tokens: list[_Token] = []
        self.cover: list[int] = []  # character index -> index of the token that holds it
        position = 0
        for word, tag in rjieba.tag(self.folded):
            self.tokens.append(_Token(position, word, tag))
            self.cover.extend([len(self.tokens) - 1] * len(word))
            position += len(word)

    def run(self) -> list[NameSpan]:
        found: list[NameSpan] = []
        i = 0
        while i < len(self.folded):
            span = self._at(i) if self.folded[i] in self.first_chars else None
            if span is None:
                i += 1
            else:
                found.append(span)
                i = span.end
        return found

    # -- helpers ------------------------------------------------------------------------------
    def token_at(self, i: int) -> _Token:
        return self.tokens[self.cover[i]]

    def token_starting(self, i: int) -> _Token | None:
        if i >= len(self.folded):
            return None
        token = self.token_at(i)
        return token if token.start == i else None

    def surname_at(self, i: int) -> str | None:
        double = self.folded[i : i + 2]
        if len(double) == 2 and double in self.lex.surnames_zh:
            return double
        return self.folded[i] if self.folded[i] in self.lex.surnames_zh else None

    def honorific_at(self, j: int) -> str | None:
        """The title starting at ``j`` as written (生, 小姐, Sir, " sir"), or None.

        None too when the title's first character starts a longer ordinary word: 生 in 陳生產,
        太 in 高太多.
        """
        k = j + 1 if self.text[j : j + 1] == " " else j
        first = self.folded[k : k + 1].lower()
        for title in self.lex.honorifics_zh:
            if title[0] != first:
                continue  # most positions start no title: skip the list cheaply
            if _HAN.match(title):
                if k != j:
                    continue  # a space before a Chinese title: 陳 生 is not 陳生
                if not self.folded.startswith(title, j):
                    continue
                token = self.token_starting(j)
                if token is not None and token.end > j + len(title) and _is_word(token):
                    continue
                return self.text[j : j + len(title)]
            end = k + len(title)  # "陳 sir" as well as "陳sir"
            if self.text[k:end].lower() == title and not _LATIN.match(self.text, end):
                return self.text[j:end]
        return None

    def stop_word_at(self, i: int) -> str | None:
        """The longest not-a-name word (黃金, 陳述, 李寧) starting at ``i``."""
        for length in range(min(self.lex.not_names_zh_longest, len(self.folded) - i), 1, -1):
            if self.folded[i : i + length] in self.lex.not_names_zh:
                return self.folded[i : i + length]
        return None

    def inside_stop_word(self, i: int) -> bool:
        """True when a not-a-name word that began before ``i`` covers it (古 in 朱古力)."""
        longest = self.lex.not_names_zh_longest
        for begin in range(max(0, i - longest + 1), i):
            word = self.stop_word_at(begin)
            if word is not None and begin + len(word) > i:
                return True
        return False

    def word_then_surname(self, cover: _Token, i: int, size: int) -> bool:
        """True for jieba's 客户王|芳: a whole word glued to the surname that ends the token."""
        prefix = self.folded[cover.start : i]
        return cover.end == i + size and len(prefix) >= 2 and bool(rjieba.has_word(prefix))

    def given_chars(self, j: int, limit: int = 2) -> int:
        """How many characters from ``j`` can be a given name (at most ``limit``)."""
        count = 0
        while count < limit and j + count < len(self.folded):
            char = self.folded[j + count]
            if not _HAN.match(char) or char in self.lex.given_stop_zh:
                break
            if count > 0:
                token = self.token_starting(j + count)
                if token is not None and _is_word(token) and token.end > j + limit:
                    break  # 張偉|身份證: a word starts here and runs past the name
            count += 1
        return count

    def cue(self, start: int, end: int) -> str | None:
        return cue_near(self.text, self.cues, start, end)

    def span(
        self, start: int, end: int, score: float, why: str, *, raise_on_cue: bool
    ) -> NameSpan:
        if raise_on_cue and score < NAME_IN_CONTEXT:
            cue = self.cue(start, end)
            if cue is not None:
                return NameSpan(start, end, NAME_IN_CONTEXT, f"{why}; cue {cue!r} nearby")
        return NameSpan(start, end, score, why)

    # -- the decision at one position ---------------------------------------------------------
    def _at(self, i: int) -> NameSpan | None:
        surname = self.surname_at(i)
        if surname is None:
            return None
        size = len(surname)
        shown = self.text[i : i + size]
        cover = self.token_at(i)
        if cover.start < i and _is_word(cover) and not self.word_then_surname(cover, i, size):
            return None  # 如何, 對方, 一張, 每周: the character ends an ordinary word
        if self.inside_stop_word(i):
            return None

        title = self.honorific_at(i + size)
        stop = self.stop_word_at(i)
        if title is not None and (stop is None or len(stop) < size + len(title)):
            end = i + size + len(title)
            return NameSpan(
                i,
                end,
                HONORIFIC,
                f"surname {shown} + honorific {self.text[i + size : end].strip()}",
            )

        if stop is not None:
            # A listed word (李寧, 陳述) is a name only when a title follows it (李寧先生).
            after = i + len(stop)
            title = self.honorific_at(after) if len(stop) <= size + 2 else None
            if title is None or title not in _PERSONAL_TITLES:
                return None  # 區域經理 is a regional manager, 李寧先生 a man
            end = after + len(title)
            return NameSpan(
                i,
                end,
                HONORIFIC,
                f"surname {shown} + given name {self.text[i + size : after]} + honorific "
                f"{self.text[after:end]}",
            )
        given = self._given_name(i, size, cover)
        if given is not None:
            end, base, how = given
            title = self.honorific_at(end)
            if title is not None:
                full = end + len(title)
                return NameSpan(
                    i,
                    full,
                    HONORIFIC,
                    f"surname {shown} + given name {self.text[i + size : end]} + honorific "
                    f"{self.text[end:full]}",
                )
            return self.span(
                i,
                end,
                base,
                f"surname {shown} + given name {self.text[i + size : end]} ({how})",
                raise_on_cue=True,
            )
        return self._prefixed(i, size, shown)

    def _given_name(self, i: int, size: int, cover: _Token) -> tuple[int, float, str] | None:
        """(end, base score, how) of a given name after the surname at ``i``, or None."""
        everyday = self.folded[i : i + size] in self.lex.everyday_surnames_zh
        token = cover if cover.start == i else None
        if token is not None and token.tag in _NAME_TAGS and size < len(token.word) <= size + 2:
            return self._jieba_given_name(i, size, token, everyday=everyday)
        if token is not None and len(token.word) > size and _is_word(token):
            return None  # 黃金價格, 高風險: the surname character starts an ordinary word
        return self._lexicon_given_name(i, size, everyday=everyday)

    def _jieba_given_name(
        self, i: int, size: int, token: _Token, *, everyday: bool
    ) -> tuple[int, float, str] | None:
        """Surname + one or two characters that jieba tagged as a person name (nr)."""
        given = token.word[size:]
        if given[0] in self.lex.given_stop_zh:
            return None  # 鐘|先: jieba's guess, but 先 does not start a given name
        if everyday and len(given) == 1 and self.cue(i, token.end) is None:
            return None  # 賀年, 高手: two-character "names" on an everyday surname
        end = token.end
        if len(token.word) == size + 1 and self._one_more_given_char(end):
            end += 1
        return end, JIEBA_NAME, "jieba reads a name"

    def _one_more_given_char(self, end: int) -> bool:
        """Whether the character at ``end`` ends a name jieba cut one short (梁家|豪).

        Only when it is not a function word and does not start a dictionary word.
        """
        following = self.token_starting(end)
        return following is not None and not _is_word(following) and self.given_chars(end, 1) == 1

    def _lexicon_given_name(
        self, i: int, size: int, *, everyday: bool
    ) -> tuple[int, float, str] | None:
        """A lone surname character: up to two following characters that may be a given name."""
        if everyday and self.cue(i, i + size + 2) is None:
            return None  # 張 "sheet", 萬 "ten thousand": no cue, no name
        j = i + size
        following = self.token_starting(j)
        if following is not None and _is_word(following) and following.tag not in _GIVEN_TAGS:
            return None  # 張|支票: a lone surname character before an ordinary word
        count = self.given_chars(j)
        if count == 0:
            return None
        return j + count, BARE, "surname lexicon"

    def _prefixed(self, i: int, size: int, shown: str) -> NameSpan | None:
        """阿陳, 老王, 小李: a person called by surname with a prefix; 姓陳: "surnamed Chan"."""
        if i == 0:
            return None
        before = self.folded[i - 1]
        if before == "阿":
            score = PREFIX_AH
        elif before in "老小":
            score = PREFIX_WEAK
        elif before == "姓":
            return self.span(i, i + size, PREFIX_WEAK, f"姓 + surname {shown}", raise_on_cue=True)
        else:
            return None
        if i + size < len(self.folded) and self.given_chars(i + size, 1) == 1:
            following = self.token_starting(i + size)
            if following is None or not _is_word(following):
                return None  # 小陳大文? ambiguous: leave it
        prefix = self.text[i - 1]
        return self.span(
            i - 1, i + size, score, f"prefix {prefix} + surname {shown}", raise_on_cue=True
        )
