"""The lexicon engine: Aho-Corasick prefilter over all literals, confirmed and scored per rule."""

from __future__ import annotations

import bisect
import re._constants as sre_constants
import re._parser as sre_parse
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import ahocorasick_rs
import regex
import rjieba

from bot.engine.normalize import AliasTable, NormalizedText, fold_char_string, is_cjk, is_word_char
from bot.engine.rulebook import ExcludeSpec, PatternSpec, Rule, Rulebook
from bot.engine.validators import VALIDATORS, WEAK_VALIDATORS

CONTEXT_RAISE = 0.3
CONTEXT_LOWER = 0.4
_TOKEN = regex.compile(r"[\p{Latin}\d]+(?:['.,][\p{Latin}\d]+)*|\p{Han}+|[^\s\p{Latin}\d\p{Han}]")
_TOKEN_WINDOW = 600  # characters either side of a hit that are tokenised for `near`


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
class _Hit:
    start: int  # normalised offsets
    end: int
    score: float
    source: str


@dataclass(frozen=True, slots=True)
class _PatternGate:
    min_digits: int
    literals: frozenset[str] | None
    digit_run: int = 0  # digits every match has in one run (at most 2 separators apart)


class Deadline:
    """A per-message time budget shared by every regex run on that message."""

    def __init__(self, pattern_timeout: float, message_budget: float) -> None:
        """Each regex gets at most ``pattern_timeout`` s and all together ``message_budget`` s."""
        self._pattern_timeout = pattern_timeout
        self._ends_at = time.monotonic() + message_budget
        self.errors: list[str] = []

    def timeout(self) -> float:
        """Seconds the next regex may take (never below 1 ms so a late call still fails fast)."""
        return max(0.001, min(self._pattern_timeout, self._ends_at - time.monotonic()))

    def finditer(
        self,
        pattern: regex.Pattern[str],
        text: str,
        label: str,
        pos: int = 0,
        endpos: int | None = None,
    ) -> list[tuple[int, int]]:
        """All non-overlapping matches, or none (and an error noted) if the time box runs out.

        ``pos``/``endpos`` limit the search but keep the text around them visible to
        look-behinds, unlike slicing.
        """
        end = len(text) if endpos is None else endpos
        try:
            return [m.span() for m in pattern.finditer(text, pos, end, timeout=self.timeout())]
        except TimeoutError:
            self.errors.append(
                f"{label}: regex timed out; this pattern was skipped on this message"
            )
            return []

    def search(self, pattern: regex.Pattern[str], text: str, label: str) -> bool:
        """Whether ``pattern`` occurs, treating a time-out as 'not found' (and noting it)."""
        try:
            return pattern.search(text, timeout=self.timeout()) is not None
        except TimeoutError:
            self.errors.append(
                f"{label}: regex timed out; this pattern was skipped on this message"
            )
            return False


class Lexicon:
    """All rules compiled into one prefilter plus per-rule confirmation logic."""

    def __init__(
        self,
        rulebook: Rulebook,
        *,
        pattern_timeout: float = 0.05,
        message_budget: float = 0.5,
        use_gates: bool = True,
    ) -> None:
        """Compile ``rulebook``; regexes are time-boxed per pattern and per message.

        ``use_gates=False`` runs every pattern on every message (tests prove the gates
        never change a result).
        """
        self.rulebook = rulebook
        self.rules = rulebook.rules
        self.aliases = AliasTable(
            {alias: canonical for alias, canonical in rulebook.aliases.items()}
        )
        self.pattern_timeout = pattern_timeout
        self.message_budget = message_budget
        self._use_gates = use_gates
        self._alias_pairs = [
            (fold_char_string(a), fold_char_string(c)) for a, c in rulebook.aliases.items()
        ]
        self._usages: dict[str, list[tuple[int, Role, int]]] = defaultdict(list)
        self._compact_usages: dict[str, list[int]] = defaultdict(list)
        self._gates: dict[tuple[int, int], _PatternGate] = {}
        for rule_index, rule in enumerate(self.rules):
            self._index_rule(rule_index, rule)
        self._literals = list(self._usages)
        self._matcher = ahocorasick_rs.AhoCorasick(self._literals) if self._literals else None
        self._compact_literals = list(self._compact_usages)
        self._compact_matcher = (
            ahocorasick_rs.AhoCorasick(self._compact_literals) if self._compact_literals else None
        )
        self._ungated_patterns = sum(
            1 for g in self._gates.values() if g.literals is None and g.min_digits == 0
        )

    # -- compile -------------------------------------------------------------------------
    def _fold(self, literal: str) -> str:
        folded = fold_char_string(literal)
        return self.aliases.apply(folded, list(range(len(folded))))[0]

    def _add(self, literal: str, rule_index: int, role: Role, extra: int = 0) -> None:
        folded = self._fold(literal)
        if folded:
            self._usages[folded].append((rule_index, role, extra))

    def _spellings(self, folded_term: str) -> list[str]:
        """The term and its alias spellings, for the compact view ("加我微信" -> "加我vx").

        Aliases are folded before the compact view is made, so an alias spelt apart ("v.x")
        is only found if the compact view knows the alias spelling too.
        """
        spellings = [folded_term]
        for alias, canonical in self._alias_pairs:
            if canonical in folded_term:
                spellings.append(folded_term.replace(canonical, alias))
        return spellings

    def _index_rule(self, rule_index: int, rule: Rule) -> None:
        for term in rule.terms:
            self._add(term, rule_index, Role.TERM)
            for spelling in self._spellings(self._fold(term)):
                compact = "".join(c for c in spelling if c.isalnum())
                if len(compact) >= 2 and rule_index not in self._compact_usages[compact]:
                    self._compact_usages[compact].append(rule_index)
        if rule.near:
            for term in rule.near.terms:
                self._add(term, rule_index, Role.NEAR)
        if rule.context:
            for term in rule.context.raise_terms:
                self._add(term, rule_index, Role.RAISE)
            for term in rule.context.lower_terms:
                self._add(term, rule_index, Role.LOWER)
        for term in rule.allow_terms:
            self._add(term, rule_index, Role.ALLOW)
        for exclude_index, exclude in enumerate(rule.excludes):
            for term in exclude.terms:
                self._add(term, rule_index, Role.EXCLUDE, exclude_index)
        for pattern_index, pattern in enumerate(rule.patterns):
            gate = _analyse(pattern.source) if self._use_gates else _PatternGate(0, None)
            self._gates[(rule_index, pattern_index)] = gate
            for literal in gate.literals or ():
                self._add(literal, rule_index, Role.TRIGGER, pattern_index)

    # -- match ---------------------------------------------------------------------------
    def normalise(self, text: str) -> NormalizedText:
        """The normalised views rules are matched against."""
        return NormalizedText.build(text, self.aliases)

    def evaluate(
        self, norm: NormalizedText, deadline: Deadline | None = None
    ) -> tuple[list[Evaluated], list[str]]:
        """Every candidate hit of every rule on ``norm``, kept or dropped, and any errors."""
        deadline = deadline or Deadline(self.pattern_timeout, self.message_budget)
        text = norm.text
        found = self._prefilter(text)
        digits = sum(map(str.isdigit, text))
        digit_run = longest_digit_run(text) if digits else 0
        candidate_rules: dict[int, list[_Hit]] = defaultdict(list)
        for (rule_index, role, _extra), spans in found.items():
            if role is Role.TERM:
                rule = self.rules[rule_index]
                for start, end, literal in spans:
                    if _literal_bounded(text, start, end, literal):
                        candidate_rules[rule_index].append(
                            _Hit(start, end, rule.score, f"term '{literal}'")
                        )
        for rule_index, hit in self._compact_hits(norm):
            candidate_rules[rule_index].append(hit)
        for rule_index, rule in enumerate(self.rules):
            for pattern_index, pattern in enumerate(rule.patterns):
                gate = self._gates[(rule_index, pattern_index)]
                if gate.min_digits > digits or gate.digit_run > digit_run:
                    continue
                if (
                    gate.literals is not None
                    and (rule_index, Role.TRIGGER, pattern_index) not in found
                ):
                    continue
                for start, end in deadline.finditer(
                    pattern.compiled, text, f"{rule.id}/{pattern.name}"
                ):
                    if start < end:
                        candidate_rules[rule_index].append(
                            _Hit(start, end, pattern.score, f"pattern {pattern.name}")
                        )
        results: list[Evaluated] = []
        tokens = _Tokens(text)
        for rule_index, hits in candidate_rules.items():
            rule = self.rules[rule_index]
            view = _RuleView(rule, rule_index, norm, found, deadline, tokens)
            results.extend(view.judge(hits))
        return results, deadline.errors

    def _prefilter(self, text: str) -> dict[tuple[int, Role, int], list[tuple[int, int, str]]]:
        found: dict[tuple[int, Role, int], list[tuple[int, int, str]]] = defaultdict(list)
        if self._matcher is None or not text:
            return found
        for literal_index, start, end in self._matcher.find_matches_as_indexes(
            text, overlapping=True
        ):
            literal = self._literals[literal_index]
            for rule_index, role, extra in self._usages[literal]:
                found[(rule_index, role, extra)].append((start, end, literal))
        return found

    def _compact_hits(self, norm: NormalizedText) -> Iterable[tuple[int, _Hit]]:
        """Terms spelt apart or with stand-ins: "W h a t s A p p", "v.x", "wh@ts"."""
        if self._compact_matcher is None or norm.text.isalnum():
            return
        text = norm.text
        for literal_index, cstart, cend in self._compact_matcher.find_matches_as_indexes(
            norm.compact, overlapping=True
        ):
            start, end = norm.compact_to_text(cstart, cend)
            span = text[start:end]
            literal = self._compact_literals[literal_index]
            if span == literal or not _literal_bounded(text, start, end, literal):
                continue
            if not _looks_obfuscated(span):
                continue
            for rule_index in self._compact_usages[literal]:
                rule = self.rules[rule_index]
                yield (
                    rule_index,
                    _Hit(start, end, rule.score, f"term '{literal}' spelt apart as '{span}'"),
                )


class _Tokens:
    """Lazy token positions of the normalised text, for `near` distances (jieba for Chinese)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._window: tuple[int, int] | None = None
        self._starts: list[int] = []
        self._ends: list[int] = []

    def _ensure(self, around: int) -> None:
        if (
            self._window
            and self._window[0] <= around - _TOKEN_WINDOW // 2
            and around + _TOKEN_WINDOW // 2 <= self._window[1]
        ):
            return
        low = max(0, around - _TOKEN_WINDOW)
        high = min(len(self._text), around + _TOKEN_WINDOW)
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


class _RuleView:
    """Judges one rule's candidate hits on one message."""

    def __init__(
        self,
        rule: Rule,
        rule_index: int,
        norm: NormalizedText,
        found: dict[tuple[int, Role, int], list[tuple[int, int, str]]],
        deadline: Deadline,
        tokens: _Tokens,
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
            if _literal_bounded(self.text, o[0], o[1], o[2])
        ]

    def judge(self, hits: list[_Hit]) -> list[Evaluated]:
        rule = self.rule
        allowed = self._allow_reason()
        out: list[Evaluated] = []
        for hit in _dedupe(hits):
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

    def _score(self, hit: _Hit) -> tuple[float, str, bool]:
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

    def _excluded(self, hit: _Hit, exclude: ExcludeSpec, exclude_index: int) -> str:
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

    def _near(self, hit: _Hit) -> str | None:
        near = self.rule.near
        assert near is not None  # noqa: S101  (caller checked)
        within = near.within
        span = (hit.start, hit.end)
        for s, e, literal in self._occurrences(Role.NEAR):
            if (s, e) != span and self.tokens.gap(span, (s, e)) <= within:
                return f"'{literal}'"
        low = max(0, hit.start - _TOKEN_WINDOW // 2)
        high = min(len(self.text), hit.end + _TOKEN_WINDOW // 2)
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


def _dedupe(hits: list[_Hit]) -> list[_Hit]:
    """Keep, for overlapping hits of one rule, the longest (then highest-scored) one."""
    ordered = sorted(hits, key=lambda h: (-(h.end - h.start), -h.score, h.start))
    kept: list[_Hit] = []
    for hit in ordered:
        if not any(hit.start < k.end and k.start < hit.end for k in kept):
            kept.append(hit)
    return sorted(kept, key=lambda h: h.start)


def _literal_bounded(text: str, start: int, end: int, literal: str) -> bool:
    """Latin-script ends of a literal must not be glued to other letters or digits."""
    if is_word_char(literal[0]) and start > 0 and is_word_char(text[start - 1]):
        return False
    return not (is_word_char(literal[-1]) and end < len(text) and is_word_char(text[end]))


def _looks_obfuscated(span: str) -> bool:
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


# -- pattern gates -------------------------------------------------------------------------
def _analyse(source: str) -> _PatternGate:
    """Cheap preconditions of a pattern: digits it needs and literals one of which must occur.

    Most messages contain neither, so most patterns never run: this keeps screening fast with
    many rules. A pattern the stdlib parser cannot read (``regex``-only syntax) simply always runs.
    """
    try:
        parsed = sre_parse.parse(source, re_flags())
    except Exception:  # noqa: BLE001  (any parse failure just means "no gate")
        return _PatternGate(0, None)
    literals = _required_literals(list(parsed))
    # One letter or digit occurs in nearly every message; one symbol ('@') or one Chinese
    # character still rules out most of them.
    if literals is not None and any(
        len(x) < 2 and ((x.isascii() and x.isalnum()) or x.isspace()) for x in literals
    ):
        literals = None
    return _PatternGate(_min_digits(list(parsed)), literals, _DigitRun().longest(list(parsed)))


def re_flags() -> int:
    """Flags used when analysing patterns (case-insensitive like matching)."""
    import re  # noqa: PLC0415

    return re.IGNORECASE


_DIGIT_CLASSES = {sre_constants.CATEGORY_DIGIT}


def _is_digit_class(op: Any, av: Any) -> bool:
    if op is sre_constants.LITERAL:
        return isinstance(av, int) and chr(av).isdigit()
    if op is sre_constants.IN and isinstance(av, list):
        only_digits = True
        for item_op, item_av in av:
            if item_op is sre_constants.CATEGORY and item_av in _DIGIT_CLASSES:
                continue
            if item_op is sre_constants.RANGE and item_av[0] >= 48 and item_av[1] <= 57:
                continue
            if item_op is sre_constants.LITERAL and chr(item_av).isdigit():
                continue
            only_digits = False
        return only_digits
    return False


_DIGIT_RUN = regex.compile(r"\d(?:[^\p{L}\p{N}]{0,2}\d)*")
MAX_SEPARATORS = 2  # characters allowed between two digits of one run (both sides agree)


def longest_digit_run(text: str) -> int:
    """Most digits in one run of the text, digits at most two non-alphanumerics apart."""
    return max((sum(map(str.isdigit, m)) for m in _DIGIT_RUN.findall(text)), default=0)


class _DigitRun:
    """The most digits a pattern requires inside one run, by walking its syntax tree.

    Conservative by construction: anything it does not understand ends the run, which only
    lowers the requirement (and so only runs the pattern more often, never less).
    """

    def longest(self, items: list[tuple[Any, Any]]) -> int:
        best, _current, _gap = self._walk(items, 0, 0, 0)
        return best

    def _walk(
        self, items: list[tuple[Any, Any]], best: int, current: int, gap: int
    ) -> tuple[int, int, int]:
        for op, av in items:
            if _is_digit_class(op, av):
                current, gap = current + 1, 0
            elif self._separator(op, av):
                gap += 1
            elif op in (
                sre_constants.MAX_REPEAT,
                sre_constants.MIN_REPEAT,
                sre_constants.POSSESSIVE_REPEAT,
            ):
                low, high, sub = av
                sub_items = list(sub)
                if len(sub_items) == 1 and _is_digit_class(*sub_items[0]):
                    current, gap = current + low, 0 if low else gap
                elif (
                    len(sub_items) == 1
                    and self._separator(*sub_items[0])
                    and high != sre_constants.MAXREPEAT
                ):
                    gap += high
                elif low >= 1 and high == low and self._plain(sub_items):
                    for _ in range(low):
                        best, current, gap = self._walk(sub_items, best, current, gap)
                else:
                    current, gap = 0, 0
            elif op is sre_constants.SUBPATTERN and self._plain(list(av[-1])):
                best, current, gap = self._walk(list(av[-1]), best, current, gap)
            elif op is sre_constants.AT:
                continue  # anchors and boundaries match no characters
            else:
                current, gap = 0, 0
            if gap > MAX_SEPARATORS:
                current, gap = 0, 0
            best = max(best, current)
        return best, current, gap

    def _separator(self, op: Any, av: Any) -> bool:
        """One character that is never a letter or digit (a space, '-', '(', ')', '.', ...)."""
        if op is sre_constants.LITERAL:
            return not chr(av).isalnum()
        if op is sre_constants.IN:
            for item_op, item_av in av:
                if item_op is sre_constants.LITERAL and not chr(item_av).isalnum():
                    continue
                if item_op is sre_constants.CATEGORY and item_av is sre_constants.CATEGORY_SPACE:
                    continue
                return False
            return True
        return False

    def _plain(self, items: list[tuple[Any, Any]]) -> bool:
        """Only digits, separators, and repeats of them: safe to walk inside."""
        for op, av in items:
            if _is_digit_class(op, av) or self._separator(op, av) or op is sre_constants.AT:
                continue
            if op in (
                sre_constants.MAX_REPEAT,
                sre_constants.MIN_REPEAT,
                sre_constants.POSSESSIVE_REPEAT,
            ) and self._plain(list(av[2])):
                continue
            if op is sre_constants.SUBPATTERN and self._plain(list(av[-1])):
                continue
            return False
        return True


def _min_digits(items: list[tuple[Any, Any]]) -> int:
    total = 0
    for op, av in items:
        if _is_digit_class(op, av):
            total += 1
        elif op in (
            sre_constants.MAX_REPEAT,
            sre_constants.MIN_REPEAT,
            sre_constants.POSSESSIVE_REPEAT,
        ):
            low, _high, sub = av
            total += low * _min_digits(list(sub))
        elif op is sre_constants.SUBPATTERN:
            total += _min_digits(list(av[-1]))
        elif op is sre_constants.BRANCH:
            total += min(_min_digits(list(b)) for b in av[1])
    return total


def _required_literals(items: list[tuple[Any, Any]]) -> frozenset[str] | None:
    """A set of literals at least one of which every match contains (best found), or None."""
    best: frozenset[str] | None = None

    def consider(candidate: frozenset[str] | None) -> None:
        nonlocal best
        if candidate and (best is None or _selectivity(candidate) > _selectivity(best)):
            best = candidate

    run: list[str] = []
    for index, (op, av) in enumerate(items):
        if op is sre_constants.LITERAL and isinstance(av, int):
            run.append(chr(av).casefold())
            continue
        consider(frozenset({"".join(run)}) if run else None)
        run = []
        if op is sre_constants.SUBPATTERN:
            consider(_required_literals(list(av[-1])))
        elif op in (
            sre_constants.MAX_REPEAT,
            sre_constants.MIN_REPEAT,
            sre_constants.POSSESSIVE_REPEAT,
        ):
            low, _high, sub = av
            if low >= 1:
                consider(_required_literals(list(sub)))
        elif op is sre_constants.BRANCH:
            options = [_required_literals(list(b)) for b in av[1]]
            known = [o for o in options if o]
            if len(known) == len(options):
                consider(frozenset().union(*known))
            # The parser factors common prefixes ("wa|wts" -> "w" + ("a"|"ts")): glue the
            # literal run before the branch back onto each all-literal alternative.
            previous = items[index - 1] if index else None
            tails = [_all_literal(list(b)) for b in av[1]]
            if (
                previous is not None
                and previous[0] is sre_constants.LITERAL
                and all(t is not None for t in tails)
            ):
                prefix = _literal_run_before(items, index)
                consider(frozenset(prefix + t for t in tails if t is not None))
    consider(frozenset({"".join(run)}) if run else None)
    return best


# Words so common that, as the only trigger of a pattern, they gate almost nothing.
_COMMON_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "at",
        "be",
        "by",
        "do",
        "for",
        "he",
        "i",
        "if",
        "in",
        "is",
        "it",
        "me",
        "my",
        "no",
        "of",
        "on",
        "or",
        "so",
        "the",
        "to",
        "up",
        "us",
        "we",
        "you",
    ]
)


def _selectivity(literals: frozenset[str]) -> tuple[int, int]:
    """How rarely a trigger set fires: its weakest literal first, then fewer literals."""
    weakest = min(_strength(x) for x in literals)
    return weakest, -len(literals)


def _strength(literal: str) -> int:
    """Roughly how rare a literal is: one Latin letter or digit is worthless as a trigger."""
    if len(literal) == 1 and literal.isascii() and (literal.isalnum() or literal.isspace()):
        return 0
    return 1 if literal.strip() in _COMMON_WORDS else len(literal)


def _all_literal(items: list[tuple[Any, Any]]) -> str | None:
    if items and all(op is sre_constants.LITERAL for op, _ in items):
        return "".join(chr(av).casefold() for _, av in items)
    return None


def _literal_run_before(items: list[tuple[Any, Any]], index: int) -> str:
    chars: list[str] = []
    position = index - 1
    while position >= 0 and items[position][0] is sre_constants.LITERAL:
        chars.append(chr(items[position][1]).casefold())
        position -= 1
    return "".join(reversed(chars))


def literal_candidates(
    words: Iterable[str], fold: Callable[[str], str] = fold_char_string
) -> list[str]:
    """Fold lexicon words like message text (used by tools that print the lexicon)."""
    return [fold(w) for w in words]


__all__ = ["Deadline", "Evaluated", "Lexicon", "PatternSpec"]
