"""The rule model: frozen, validated rules, the policy and the rule book that holds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import regex

from bot.domain import Action, Category, Severity


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a rule file, located for the rule author."""

    path: Path
    line: int  # 1-based; 0 when the whole file is at fault
    message: str

    def __str__(self) -> str:
        """Render as ``file:line: message`` (the form editors and CI logs link to)."""
        return (
            f"{self.path}:{self.line}: {self.message}"
            if self.line
            else f"{self.path}: {self.message}"
        )


class RulebookError(Exception):
    """The rule set cannot be used; ``problems`` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        """Keep the problems; the message lists them one per line."""
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class PatternSpec:
    """A named regular expression of a rule, compiled."""

    name: str
    source: str
    compiled: regex.Pattern[str]
    score: float
    line: int


@dataclass(frozen=True, slots=True)
class ExcludeSpec:
    """A reason to drop a hit: a pattern or literal terms found before/after/around/covering it."""

    where: str
    window: int
    compiled: regex.Pattern[str] | None
    terms: tuple[str, ...]
    line: int


@dataclass(frozen=True, slots=True)
class NearSpec:
    """Proximity requirement: one of these within ``within`` tokens of the hit."""

    within: int
    terms: tuple[str, ...]
    patterns: tuple[regex.Pattern[str], ...]


@dataclass(frozen=True, slots=True)
class ContextSpec:
    """Words near a hit that raise or lower its score."""

    window: int
    raise_terms: tuple[str, ...]
    lower_terms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RedactSpec:
    """How much of a matched span stays visible in redacted copies."""

    keep_start: int
    keep_end: int


@dataclass(frozen=True, slots=True)
class Example:
    """A rule's own example, checked by ``rules check`` and the test suite."""

    text: str
    expect_match: bool
    line: int
    todo: bool = False  # a known gap: expected to fail until the rule improves


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule file, validated and compiled."""

    id: str
    category: Category
    severity: Severity
    title: str
    message_zh: str
    message_en: str
    score: float
    terms: tuple[str, ...]
    patterns: tuple[PatternSpec, ...]
    near: NearSpec | None
    excludes: tuple[ExcludeSpec, ...]
    allow_terms: tuple[str, ...]
    allow_patterns: tuple[regex.Pattern[str], ...]
    validate: str | None
    context: ContextSpec | None
    redact: RedactSpec | None
    examples: tuple[Example, ...]
    path: Path
    line_of: dict[str, int] = field(default_factory=dict, compare=False)


NAME_RULE_ID = "client-name"


@dataclass(frozen=True, slots=True)
class NameRule:
    """The client-name pseudo-rule: a person's name in a message that also carries personal data.

    It has no rule file (names come from name detection, not patterns); ``policy.yaml``
    ``names:`` sets its severity, threshold and wording, with these defaults.
    """

    severity: Severity = Severity.MEDIUM
    min_score: float = 0.6
    title: str = "Client name next to personal data"
    message_zh: str = "請勿在群內把客戶姓名與其個人資料一併發送。"
    message_en: str = "Do not post a client's name together with their personal data."
    keep: tuple[int, int] = (1, 0)  # the first character stays visible: 陳**, C**** ****
    id: str = NAME_RULE_ID


@dataclass(frozen=True, slots=True)
class IntentRule:
    """How the intent model's score for one category combines with the rules (policy.yaml).

    ``flag_at``: the model alone flags the message at or above this score (None: never alone).
    ``veto_when_reported``: a rule finding of this category is dropped when the model is at
    least this sure that the message reports, warns, quotes policy or asks, and scores the
    category itself under ``flag_at``; never one a checksum proved (None: never vetoed).
    """

    category: Category
    flag_at: float | None = None
    veto_when_reported: float | None = None
    severity: Severity = Severity.MEDIUM
    title: str = ""
    message_zh: str = ""
    message_en: str = ""

    @property
    def id(self) -> str:
        """The pseudo-rule id of the model's own findings: ``intent-advice``, ``intent-pii``."""
        return "intent-" + self.category.value.replace("_", "-")


@dataclass(frozen=True, slots=True)
class IntentPolicy:
    """Which intent model runs (a name under models/intent/; "" for none) and how it counts."""

    model: str = ""
    rules: dict[Category, IntentRule] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Policy:
    """What to do about findings: threshold, actions per category x severity, repeat offenders."""

    min_score: float
    actions: dict[tuple[Category, Severity], tuple[Action, ...]]
    repeat_threshold: int
    repeat_window_seconds: int
    repeat_action: Action
    names: NameRule = field(default_factory=NameRule)
    intent: IntentPolicy = field(default_factory=IntentPolicy)

    def actions_for(self, category: Category, severity: Severity) -> tuple[Action, ...]:
        """Actions for one finding; ``log`` is implied for everything."""
        return self.actions.get((category, severity), (Action.LOG,))


@dataclass(frozen=True, slots=True)
class Rulebook:
    """Everything loaded from a rules directory, with a content hash as its version."""

    rules: tuple[Rule, ...]
    aliases: dict[str, str]
    policy: Policy
    version: str
    directory: Path
