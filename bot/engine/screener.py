"""Screener: one message in, one Verdict out (normalise, match, names, merge, threshold)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bot.domain import Category, Finding, Verdict
from bot.engine.intent.combine import combine
from bot.engine.intent.model import IntentModel, IntentModelError, IntentScores
from bot.engine.matcher.deadline import Deadline
from bot.engine.matcher.hits import Evaluated
from bot.engine.matcher.lexicon import Lexicon
from bot.engine.names import NameFinder
from bot.engine.normalize import NormalizedText
from bot.engine.resources import models_dir
from bot.engine.rulebook.loader import load_rulebook
from bot.engine.rulebook.model import Policy, Rulebook
from bot.engine.validators import WEAK_VALIDATORS

MAX_MESSAGE_CHARS = 200_000  # DingTalk caps text at ~20 KB; anything larger is screened in part


class NameSpanLike(Protocol):
    """What the name finder returns for one name (see bot.engine.names)."""

    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def score(self) -> float: ...
    @property
    def why(self) -> str: ...


class NameFinderLike(Protocol):
    """The name detector the screener uses when available."""

    status: str

    def find(self, text: str) -> Sequence[NameSpanLike]: ...


@dataclass(frozen=True, slots=True)
class Explanation:
    """Everything `rules explain` shows: the normalised text and every hit, kept or dropped."""

    normalised: str
    verdict: Verdict
    evaluated: tuple[Evaluated, ...]
    names: tuple[NameSpanLike, ...]
    errors: tuple[str, ...]
    intent: IntentScores | None = None


class Screener:
    """Screens text against a rule book (and names, when a name finder is loaded)."""

    def __init__(
        self,
        rulebook: Rulebook,
        names: NameFinderLike | None = None,
        lexicon: Lexicon | None = None,
        intent: IntentModel | None = None,
        intent_status: str = "",
    ) -> None:
        """Compile ``rulebook``; names and the intent model are optional (rules work alone)."""
        self.rulebook = rulebook
        self.lexicon = lexicon or Lexicon(rulebook)
        self.names = names
        self.intent = intent
        self.policy: Policy = rulebook.policy
        self.rules_version = rulebook.version
        self.model_version = intent.version if intent is not None else ""
        self.intent_status = intent_status or (
            f"intent model {intent.version}" if intent is not None else "intent model off"
        )
        self._rules = {rule.id: rule for rule in rulebook.rules}

    @classmethod
    def from_directory(cls, rules_dir: Path, *, ner: bool = True, intent: bool = True) -> Screener:
        """Load rules (raises RulebookError) and, if asked, the name finder and intent model.

        A missing or broken model does not stop screening: the rules run alone and
        :attr:`intent_status` says why.
        """
        rulebook = load_rulebook(rules_dir)
        model, status = load_intent_model(rulebook.policy) if intent else (None, "")
        return cls(
            rulebook, NameFinder.load() if ner else None, intent=model, intent_status=status
        )

    @property
    def ner_status(self) -> str:
        """Human-readable state of name detection."""
        return self.names.status if self.names is not None else "name detection off"

    def with_rulebook(self, rulebook: Rulebook) -> Screener:
        """A screener for a new rule book that keeps this one's name finder and model."""
        if rulebook.policy.intent.model == self.policy.intent.model:
            return Screener(
                rulebook, self.names, intent=self.intent, intent_status=self.intent_status
            )
        model, status = load_intent_model(rulebook.policy)
        return Screener(rulebook, self.names, intent=model, intent_status=status)

    def screen(self, text: str) -> Verdict:
        """Screen one message. CPU-bound and synchronous: async callers use a worker thread."""
        return self.explain(text).verdict

    def explain(self, text: str) -> Explanation:
        """Screen one message and keep every intermediate result for explanation."""
        errors: list[str] = []
        if len(text) > MAX_MESSAGE_CHARS:
            errors.append(
                f"message is {len(text)} characters; "
                f"only the first {MAX_MESSAGE_CHARS} were screened"
            )
            text = text[:MAX_MESSAGE_CHARS]
        norm = self.lexicon.normalise(text)
        deadline = Deadline(self.lexicon.pattern_timeout, self.lexicon.message_budget)
        evaluated, regex_errors = self.lexicon.evaluate(norm, deadline)
        errors.extend(regex_errors)
        min_score = self.policy.min_score
        passed = [_to_finding(e) for e in evaluated if not e.dropped and e.score >= min_score]
        below = [_to_finding(e) for e in evaluated if e.dropped or e.score < min_score]
        intent = self._intent(norm, text, passed, below, errors)
        names: tuple[NameSpanLike, ...] = ()
        if self.names is not None and passed and any(f.category is Category.PII for f in passed):
            # A name alone is not personal data; a name in the same message as an identifier,
            # account or contact detail is, so only then is it looked for and masked.
            names = tuple(self._find_names(self.names, text, errors))
            passed.extend(self._name_findings(names, passed))
        findings = tuple(_merge(passed))
        verdict = Verdict(
            findings=findings,
            categories=tuple(c for c in Category if any(f.category is c for f in findings)),
            severity=max((f.severity for f in findings), default=None),
            rules_version=self.rules_version,
            below_threshold=tuple(below),
            errors=tuple(errors),
            model_version=self.model_version if intent is not None else "",
        )
        return Explanation(norm.text, verdict, tuple(evaluated), names, tuple(errors), intent)

    def _intent(
        self,
        norm: NormalizedText,
        text: str,
        passed: list[Finding],
        below: list[Finding],
        errors: list[str],
    ) -> IntentScores | None:
        """Score the message with the intent model and let policy combine it with the rules.

        Updates ``passed`` and ``below`` in place; None when no model ran.
        """
        if self.intent is None:
            return None
        try:
            scores = self.intent.score(norm.text)
        except Exception as error:  # noqa: BLE001  (reported in the verdict; rules still count)
            errors.append(f"intent model failed: {type(error).__name__}")
            return None
        if scores.truncated:
            errors.append("message too long for the intent model: its end was not modelled")

        def phrase_text(start: int, end: int) -> tuple[int, int, str]:
            first, last = norm.to_original(start, end)
            return first, last, text[first:last]

        combined = combine(
            passed,
            scores,
            self.policy.intent,
            model_version=self.intent.version,
            vetoable=self._vetoable,
            phrase_text=phrase_text,
        )
        passed[:] = [*combined.kept, *combined.added]
        below.extend(combined.vetoed)
        return scores

    def _vetoable(self, finding: Finding) -> bool:
        """Whether the model may drop this rule finding.

        Never when a checksum proved it, and never when the term was spelt apart or disguised
        ("W h a t s A p p"): the model reads words, and disguise is itself a sign of intent.
        """
        rule = self._rules.get(finding.rule_id)
        if rule is None or (rule.validate is not None and rule.validate not in WEAK_VALIDATORS):
            return False
        return "spelt apart as" not in finding.why  # bot.engine.matcher.lexicon's compact hits

    @staticmethod
    def _find_names(names: NameFinderLike, text: str, errors: list[str]) -> list[NameSpanLike]:
        try:
            return list(names.find(text))
        except Exception as error:  # noqa: BLE001  (reported in the verdict; rules still count)
            errors.append(f"name detection failed: {type(error).__name__}")
            return []

    def _name_findings(
        self, names: Sequence[NameSpanLike], passed: list[Finding]
    ) -> list[Finding]:
        rule = self.policy.names
        out = []
        for name in names:
            if name.score < rule.min_score:
                continue
            if any(f.start < name.end and name.start < f.end for f in passed):
                continue  # the span is already an identifier finding
            out.append(
                Finding(
                    rule_id=rule.id,
                    category=Category.PII,
                    severity=rule.severity,
                    start=name.start,
                    end=name.end,
                    score=round(name.score, 3),
                    why=f"NER: {name.why}; next to personal data",
                    title=rule.title,
                    redact=True,
                    keep=rule.keep,
                )
            )
        return out


def load_intent_model(policy: Policy) -> tuple[IntentModel | None, str]:
    """The model policy.yaml names, or None and why (missing, corrupt, switched off)."""
    name = policy.intent.model
    if not name:
        return None, "intent model off (policy.yaml names none)"
    try:
        model = IntentModel.load(models_dir() / "intent", name)
    except IntentModelError as error:
        return None, f"intent model not loaded, screening with rules only: {error}"
    return model, f"intent model {model.version}"


def _to_finding(evaluated: Evaluated) -> Finding:
    rule = evaluated.rule
    return Finding(
        rule_id=rule.id,
        category=rule.category,
        severity=rule.severity,
        start=evaluated.start,
        end=evaluated.end,
        score=evaluated.score,
        why=evaluated.why,
        title=rule.title,
        redact=rule.redact is not None,
        keep=(rule.redact.keep_start, rule.redact.keep_end) if rule.redact else (0, 0),
    )


def _merge(findings: list[Finding]) -> list[Finding]:
    """Collapse duplicates and overlaps within a category to the strongest finding.

    A digit run can look like a phone number, an account and a card at once; compliance
    needs one answer per span, so the best-scored (then most severe, then longest) wins and
    the others are named in its explanation.
    """
    ranked = sorted(
        findings, key=lambda f: (-f.score, -f.severity, -(f.end - f.start), f.start, f.rule_id)
    )
    kept: list[Finding] = []
    also: dict[int, list[str]] = {}
    for finding in ranked:
        clash = next(
            (
                i
                for i, k in enumerate(kept)
                if k.category is finding.category
                and finding.start < k.end
                and k.start < finding.end
            ),
            None,
        )
        if clash is None:
            kept.append(finding)
        elif finding.rule_id != kept[clash].rule_id:
            also.setdefault(clash, []).append(finding.rule_id)
    out = []
    for index, finding in enumerate(kept):
        if index in also:
            others = ", ".join(sorted(set(also[index])))
            finding = dataclasses.replace(finding, why=f"{finding.why}; also matched {others}")
        out.append(finding)
    return sorted(out, key=lambda f: (f.start, f.end, f.rule_id))


__all__ = ["Explanation", "Screener"]
