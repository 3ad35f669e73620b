"""The vocabulary every room shares: messages, findings, verdicts, decisions, their JSON form.

Nothing here does I/O. Every module that stores, sends or prints one of these objects uses
the ``to_dict``/``from_dict`` pair defined here, so a field added to ``Message`` reaches the
queue, the archive and the command line at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any


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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: every field, ``sent_at`` as ISO 8601 (or None)."""
        data = {item.name: getattr(self, item.name) for item in fields(self)}
        data["sent_at"] = self.sent_at.isoformat() if self.sent_at is not None else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        """The inverse of :meth:`to_dict`; missing optional fields take their defaults."""
        sent_at = data.get("sent_at")
        values = {
            item.name: data[item.name]
            for item in fields(cls)
            if item.name in data and item.name != "sent_at"
        }
        return cls(**values, sent_at=datetime.fromisoformat(sent_at) if sent_at else None)


@dataclass(frozen=True, slots=True)
class Finding:
    """One detection: a rule (or name detection) matched a span of the ORIGINAL text."""

    rule_id: str
    category: Category
    severity: Severity
    start: int
    end: int
    score: float  # after checksum and context adjustments, 0..1
    why: str  # human explanation: "term 'guaranteed return'; context +0.35 'hkid'"
    title: str = ""  # plain-words name of the rule, safe to show in a chat
    redact: bool = False  # the rule asks for this span to be masked in copies
    keep: tuple[int, int] = (0, 0)  # characters left visible at the start and end when masked

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (the form archived, exported and printed by ``screen --jsonl``)."""
        return {
            "rule_id": self.rule_id,
            "category": self.category.value,
            "severity": self.severity.label,
            "start": self.start,
            "end": self.end,
            "score": self.score,
            "why": self.why,
            "title": self.title,
            "redact": self.redact,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the screener found in one message (what to do about it is a :class:`Decision`)."""

    findings: tuple[Finding, ...]
    categories: tuple[Category, ...]
    severity: Severity | None
    rules_version: str
    below_threshold: tuple[Finding, ...] = field(default=())  # kept for `explain` and audit
    # What went wrong while screening (a regex timed out, name detection failed, the text was
    # cut): rule and pattern names only, never message text.
    errors: tuple[str, ...] = field(default=())
    model_version: str = ""  # the intent model that judged it ("" when rules alone)

    @property
    def flagged(self) -> bool:
        """True when at least one finding passed the threshold."""
        return bool(self.findings)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data of what was found."""
        return {
            "categories": [c.value for c in self.categories],
            "severity": self.severity.label if self.severity is not None else None,
            "findings": [f.to_dict() for f in self.findings],
            "rules_version": self.rules_version,
            "model_version": self.model_version,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy makes of a verdict: the actions, and the copy that may be repeated."""

    actions: tuple[Action, ...]
    masked: str  # the message with every personal-data span masked (same length)
    strikes: int = 0  # flagged messages of this sender inside the repeat window
    repeat_offender: bool = False  # the repeat-offender action was added

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data of what was decided."""
        return {
            "actions": [a.value for a in self.actions],
            "redacted": self.masked,
            "strikes": self.strikes,
            "repeat_offender": self.repeat_offender,
        }
