"""The Lexicon: all rule literals in one Aho-Corasick prefilter; evaluation of one message."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import ahocorasick_rs

from bot.engine.matcher.deadline import Deadline
from bot.engine.matcher.gates import PatternGate, analyse, longest_digit_run
from bot.engine.matcher.hits import Evaluated, Found, Hit, Role
from bot.engine.matcher.judge import RuleView, Tokens, looks_obfuscated
from bot.engine.normalize import AliasTable, NormalizedText, fold_char_string, literal_bounded
from bot.engine.rulebook.model import Rule, Rulebook


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
        self.aliases = AliasTable(rulebook.aliases)
        self.pattern_timeout = pattern_timeout
        self.message_budget = message_budget
        self._use_gates = use_gates
        self._alias_pairs = [
            (fold_char_string(a), fold_char_string(c)) for a, c in rulebook.aliases.items()
        ]
        self._usages: dict[str, list[tuple[int, Role, int]]] = defaultdict(list)
        self._compact_usages: dict[str, list[int]] = defaultdict(list)
        self._gates: dict[tuple[int, int], PatternGate] = {}
        for rule_index, rule in enumerate(self.rules):
            self._index_rule(rule_index, rule)
        self._literals = list(self._usages)
        self._matcher = ahocorasick_rs.AhoCorasick(self._literals) if self._literals else None
        self._compact_literals = list(self._compact_usages)
        self._compact_matcher = (
            ahocorasick_rs.AhoCorasick(self._compact_literals) if self._compact_literals else None
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
            gate = analyse(pattern.source) if self._use_gates else PatternGate(0, None)
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
        candidate_rules: dict[int, list[Hit]] = defaultdict(list)
        for (rule_index, role, _extra), spans in found.items():
            if role is Role.TERM:
                rule = self.rules[rule_index]
                for start, end, literal in spans:
                    if literal_bounded(text, start, end, literal):
                        candidate_rules[rule_index].append(
                            Hit(start, end, rule.score, f"term '{literal}'")
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
                            Hit(start, end, pattern.score, f"pattern {pattern.name}")
                        )
        results: list[Evaluated] = []
        tokens = Tokens(text)
        for rule_index, hits in candidate_rules.items():
            rule = self.rules[rule_index]
            view = RuleView(rule, rule_index, norm, found, deadline, tokens)
            results.extend(view.judge(hits))
        return results, deadline.errors

    def _prefilter(self, text: str) -> Found:
        found: Found = defaultdict(list)
        if self._matcher is None or not text:
            return found
        for literal_index, start, end in self._matcher.find_matches_as_indexes(
            text, overlapping=True
        ):
            literal = self._literals[literal_index]
            for rule_index, role, extra in self._usages[literal]:
                found[(rule_index, role, extra)].append((start, end, literal))
        return found

    def _compact_hits(self, norm: NormalizedText) -> Iterable[tuple[int, Hit]]:
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
            if span == literal or not literal_bounded(text, start, end, literal):
                continue
            if not looks_obfuscated(span):
                continue
            for rule_index in self._compact_usages[literal]:
                rule = self.rules[rule_index]
                yield (
                    rule_index,
                    Hit(start, end, rule.score, f"term '{literal}' spelt apart as '{span}'"),
                )
