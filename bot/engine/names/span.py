"""NameSpan, the one result of name detection, and how overlapping findings are merged."""

from __future__ import annotations

from dataclasses import dataclass

SPACY_WHY = "spaCy PERSON"
AGREEMENT_BONUS = 0.05  # spaCy and a lexicon rule found the same name independently
MAX_SCORE = 0.95


@dataclass(frozen=True, slots=True)
class NameSpan:
    """One person name found in a message."""

    start: int  # offsets in the ORIGINAL text passed in
    end: int
    score: float  # 0..1
    why: str  # "surname 陳 + honorific 生", "romanised surname Chan + 2 syllables", ...


def merge(spans: list[NameSpan]) -> list[NameSpan]:
    """Overlapping spans become one: their union, the best score and the best reason.

    The union, not the best span alone, because a redaction must cover the whole name when
    one method saw "Peter Chan" and another "Chan Tai Man" in "Peter Chan Tai Man".
    """
    out: list[NameSpan] = []
    group: list[NameSpan] = []
    group_end = -1
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if group and span.start >= group_end:
            out.append(_combine(group))
            group = []
        group.append(span)
        group_end = max(group_end, span.end) if len(group) > 1 else span.end
    if group:
        out.append(_combine(group))
    return out


def _combine(group: list[NameSpan]) -> NameSpan:
    if len(group) == 1:
        return group[0]
    best = max(group, key=lambda s: (s.score, s.end - s.start))
    score = best.score
    why = best.why
    from_spacy = any(s.why.startswith(SPACY_WHY) for s in group)
    from_lexicon = any(not s.why.startswith(SPACY_WHY) for s in group)
    if from_spacy and from_lexicon:
        score = min(MAX_SCORE, round(score + AGREEMENT_BONUS, 2))
        other = next(
            s for s in group if s.why.startswith(SPACY_WHY) != best.why.startswith(SPACY_WHY)
        )
        why = f"{best.why}; also {other.why}"
    start = min(s.start for s in group)
    end = max(s.end for s in group)
    return NameSpan(start, end, score, why)
