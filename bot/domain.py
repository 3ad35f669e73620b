"""The vocabulary shared by every module: messages, findings, verdicts; no I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum


class Category(StrEnum):
    """The three kinds of risk the screener looks for."""

    ADVICE = "advice"
    PII = "pii"
    OFF_CHANNEL = "off_channel"


class Severity(IntEnum):
    """How bad a finding is; ordered so ``max()`` gives the worst."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @classmethod
    def parse(cls, value: str) -> Severity:
        """Parse ``"low" | "medium" | "high"`` (case-insensitive)."""
        try:
            return cls[value.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {value!r}; use low, medium or high") from None

    @property
    def label(self) -> str:
        """Lower-case name used in files and output."""
        return self.name.lower()


class Action(StrEnum):
    """What the bot does about a verdict; ``log`` (the audit record) always happens."""

    LOG = "log"
    WARN = "warn"  # markdown warning in the group, @-mentioning the sender
    REDACT = "redact"  # a redacted copy replaces the text wherever the bot repeats it
    ESCALATE = "escalate"  # alert in the compliance group with a case id


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message to screen, whatever its source (DingTalk, HTTP ingest, file)."""

    id: str  # DingTalk msgId or the ingest id: the dedupe key
    text: str
    conversation_id: str = ""
    conversation_title: str = ""
    sender_id: str = ""
    sender_name: str = ""
    source: str = "cli"  # "dingtalk" | "ingest" | "file" | "cli"
    sent_at: datetime | None = None
    session_webhook: str = ""  # DingTalk reply URL, valid ~90 min
    sender_staff_id: str = ""  # needed to @-mention the sender in DingTalk


@dataclass(frozen=True, slots=True)
class Finding:
    """One detection: a rule (or NER) matched a span of the ORIGINAL text."""

    rule_id: str
    category: Category
    severity: Severity
    start: int
    end: int
    score: float  # after checksum and context adjustments, 0..1
    why: str  # human explanation: "term 'guaranteed return'; context +0.35 'hkid'"
    title: str = ""  # plain-words name of the rule, safe to show in a chat
    redact: bool = False  # whether this span is masked in redacted copies


@dataclass(frozen=True, slots=True)
class Verdict:
    """The screening outcome for one message: what was found and what to do."""

    findings: tuple[Finding, ...]
    categories: tuple[Category, ...]
    severity: Severity | None
    actions: tuple[Action, ...]
    redacted: str
    rules_version: str
    below_threshold: tuple[Finding, ...] = field(default=())  # kept for `explain` only

    @property
    def flagged(self) -> bool:
        """True when at least one finding passed the threshold."""
        return bool(self.findings)
