"""Judging one rule's candidate hits on one message: allow, exclude, checksum, near, context."""

from __future__ import annotations

import bisect

import regex
import rjieba

from bot.engine.matcher.deadline import Deadline
from bot.engine.matcher.hits import Evaluated, Found, Hit, Role
from bot.engine.normalize import NormalizedText, is_cjk, literal_bounded
from bot.engine.rulebook.model import ExcludeSpec, Rule
from bot.engine.validators import VALIDATORS, WEAK_VALIDATORS

CONTEXT_RAISE = 0.3
CONTEXT_LOWER = 0.4
_TOKEN = regex.compile(r"[\p{Latin}\d]+(?:['.,][\p{Latin}\d]+)*|\p{Han}+|[^\s\p{Latin}\d\p{Han}]")
TOKEN_WINDOW = 600  # characters either side of a hit that are tokenised for `near`


class Tokens:
    """Lazy token positions of the normalised text, for `near` distances (jieba for Chinese)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._window: tuple[int, int] | None = None
        self._starts: list[int] = []
        self._ends: list[int] = []

    def _ensure(self, around: int) -> None:
        if (
            self._window
            and self._window[0] <= around - TOKEN_WINDOW // 2
            and around + TOKEN_WINDOW // 2 <= self._window[1]
        ):
            return
        low = max(0, around - TOKEN_WINDOW)
        high = min(len(self._text), around + TOKEN_WINDOW)
        self._window = (low, high)
        self._starts, self._ends = [], []
        for match in _TOKEN.finditer(self._text, low, high):
            piece = match.group()
            if is_cjk(piece[0]) and len(piece) > 1:
                for _word, word_start, word_end in rjieba.tokenize(piece):
                    self._starts.append(match.start() + word_start)
                    self._ends.append(match.start() + word_end)
            else:
                self._starts.append(match.start())
                self._ends.append(match.end())

    def gap(self, a: tuple[int, int], b: tuple[int, int]) -> int:
        """Number of tokens strictly between spans ``a`` and ``b`` (0 if they touch or overlap)."""
        self._ensure(a[0])
        first, second = sorted((a, b))
        if second[0] < first[1]:
            return 0
        last_of_first = bisect.bisect_left(self._starts, first[1])  # tokens starting after first
        first_of_second = bisect.bisect_right(self._ends, second[0])  # tokens ending before second
        return max(0, first_of_second - last_of_first)


class RuleView:
    """Judges one rule's candidate hits on one message."""

    def __init__(
        self,
        rule: Rule,
        rule_index: int,
        norm: NormalizedText,
        found: Found,
        deadline: Deadline,
        tokens: Tokens,
    ) -> None:
        self.rule = rule
        self.index = rule_index
        self.norm = norm
        self.text = norm.text
        self.found = found
        self.deadline = deadline
        self.tokens = tokens

    def _occurrences(self, role: Role, extra: int = 0) -> list[tuple[int, int, str]]:
        return [
            o
            for o in self.found.get((self.index, role, extra), [])
            if literal_bounded(self.text, o[0], o[1], o[2])
        ]

    def judge(self, hits: list[Hit]) -> list[Evaluated]:
        """Every hit after overlaps are removed, kept or dropped, in original offsets."""
        rule = self.rule
        allowed = self._allow_reason()
        out: list[Evaluated] = []
        for hit in dedupe(hits):
            start, end = self.norm.to_original(hit.start, hit.end)
            if allowed:
                out.append(
                    Evaluated(rule, start, end, 0.0, f"{hit.source}; {allowed}", dropped=True)
                )
                continue
            score, why, dropped = self._score(hit)
            out.append(Evaluated(rule, start, end, round(score, 3), why, dropped))
        return out

    def _allow_reason(self) -> str:
        for _s, _e, literal in self._occurrences(Role.ALLOW):
            return f"allow-listed message ('{literal}')"
        for pattern in self.rule.allow_patterns:
            if self.deadline.search(pattern, self.text, f"{self.rule.id}/allow"):
                return f"allow-listed message (pattern {pattern.pattern})"
        return ""

    def _score(self, hit: Hit) -> tuple[float, str, bool]:
        rule = self.rule
        reasons = [hit.source]
        for exclude_index, exclude in enumerate(rule.excludes):
            excluded_by = self._excluded(hit, exclude, exclude_index)
            if excluded_by:
                return 0.0, "; ".join([*reasons, f"excluded: {excluded_by}"]), True
        score = hit.score
        if rule.validate:
            if VALIDATORS[rule.validate](self.text[hit.start : hit.end]):
                if rule.validate in WEAK_VALIDATORS:
                    reasons.append(f"shape {rule.validate} ok")
                else:
                    score = 1.0
                    reasons.append(f"checksum {rule.validate} ok")
            else:
                return 0.0, "; ".join([*reasons, f"checksum {rule.validate} failed"]), True
        if rule.near:
            near = self._near(hit)
            if near is None:
                return (
                    0.0,
                    "; ".join(
                        [*reasons, f"nothing required nearby within {rule.near.within} tokens"]
                    ),
                    True,
                )
            reasons.append(f"near {near}")
        if rule.context:
            window = rule.context.window
            low, high = hit.start - window, hit.end + window
            raised = [lit for s, e, lit in self._occurrences(Role.RAISE) if s < high and e > low]
            lowered = [lit for s, e, lit in self._occurrences(Role.LOWER) if s < high and e > low]
            # A lowering word wins over a raising one: "hotline ... call" is still a hotline,
            # and a business number is not personal data.
            if raised and not lowered:
                score = min(1.0, score + CONTEXT_RAISE)
                reasons.append(f"context +{CONTEXT_RAISE} '{raised[0]}'")
            if lowered:
                score = max(0.0, score - CONTEXT_LOWER)
                reasons.append(f"context -{CONTEXT_LOWER} '{lowered[0]}'")
        return score, "; ".join(reasons), False

    def _excluded(self, hit: Hit, exclude: ExcludeSpec, exclude_index: int) -> str:
        """Why ``exclude`` drops ``hit``, or "" when it does not.

        Positions, not windows of text, decide: a negation that overlaps the hit
        ("不保證回報": 不保證 starts before 保證回報) still counts as "before" it.
        """
        text = self.text
        where = exclude.where
        low = 0 if where in ("covering", "message") else max(0, hit.start - exclude.window)
        high = (
            len(text)
            if where in ("covering", "message")
            else min(len(text), hit.end + exclude.window)
        )

        def applies(s: int, e: int) -> bool:
            if where == "covering":
                return s <= hit.start and hit.end <= e
            if where == "message":
                return True
            before = low <= s < hit.start
            after = hit.end < e <= high
            if where == "before":
                return before
            if where == "after":
                return after
            return before or after or (s < hit.end and hit.start < e)

        for s, e, literal in self._occurrences(Role.EXCLUDE, exclude_index):
            if applies(s, e):
                return f"'{literal}' {where}"
        if exclude.compiled is None:
            return ""
        for s, e in self.deadline.finditer(
            exclude.compiled, text, f"{self.rule.id}/exclude", low, high
        ):
            if s < e and applies(s, e):
                return f"'{text[s:e]}' {where}"
        return ""

    def _near(self, hit: Hit) -> str | None:
        near = self.rule.near
        assert near is not None  # noqa: S101  (caller checked)
        within = near.within
        span = (hit.start, hit.end)
        for s, e, literal in self._occurrences(Role.NEAR):
            if (s, e) != span and self.tokens.gap(span, (s, e)) <= within:
                return f"'{literal}'"
        low = max(0, hit.start - TOKEN_WINDOW // 2)
        high = min(len(self.text), hit.end + TOKEN_WINDOW // 2)
        for pattern in near.patterns:
            for s, e in self.deadline.finditer(
                pattern, self.text, f"{self.rule.id}/near", low, high
            ):
                other = (s, e)
                if (
                    s < e
                    and not (other[0] <= hit.start and hit.end <= other[1])
                    and self.tokens.gap(span, other) <= within
                ):
                    return f"'{self.text[other[0] : other[1]]}'"
        return None


def dedupe(hits: list[Hit]) -> list[Hit]:
    """Keep, for overlapping hits of one rule, the longest (then highest-scored) one."""
    ordered = sorted(hits, key=lambda h: (-(h.end - h.start), -h.score, h.start))
    kept: list[Hit] = []
    for hit in ordered:
        if not any(hit.start < k.end and k.start < hit.end for k in kept):
            kept.append(hit)
    return sorted(kept, key=lambda h: h.start)


def looks_obfuscated(span: str) -> bool:
    """A spelt-apart term: punctuation or stand-ins inside it, or every piece a single character.

    "we chat" (two real words) is not evasion; "w e c h a t", "we.chat", "wh@ts app" are.
    """
    pieces = regex.split(r"[^\p{L}\p{N}]+", span)
    pieces = [p for p in pieces if p]
    if any(not (c.isalnum() or c.isspace()) for c in span.strip()):
        return True
    singles = sum(1 for p in pieces if len(p) == 1)
    # "W h a t s A p p" (all single) or "g u a r a n t e e d returns" (a run of singles).
    return (len(pieces) >= 2 and singles == len(pieces)) or singles >= 4
