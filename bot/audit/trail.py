"""The audit trail the pipeline writes to: the protocol, and its adapters over the archive sinks.

Record keys are derived from the message id (``message:<id>``, ``action:<id>:warn:sent``), so
a message replayed after a crash adds nothing twice to the hash chain.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.audit.entries import action_entry, message_entry
from bot.audit.records import Entry
from bot.domain import Action, Decision, Message, Verdict


class RecordSink(Protocol):
    """Where records go: ``AsyncArchive`` (this replica's file) or ``RedisArchiveSink``."""

    async def record(self, entries: Sequence[Entry]) -> Sequence[int | str]:
        """Store ``entries``; returns only once they are durable, raises otherwise."""
        ...


class AuditTrail(Protocol):
    """Where every message, verdict, decision and action is recorded."""

    async def record_message(
        self,
        message: Message,
        verdict: Verdict,
        decision: Decision,
        *,
        case_id: str,
        latency_ms: float,
    ) -> None:
        """Record the message (original text; the archive encrypts it) and what was decided."""
        ...

    async def record_action(
        self, message: Message, action: Action, *, case_id: str, outcome: str, detail: str
    ) -> None:
        """Record one action taken (or failed) for a message."""
        ...


class SinkAuditTrail:
    """The pipeline's trail over a :class:`RecordSink`."""

    def __init__(self, sink: RecordSink) -> None:
        """Write through ``sink``."""
        self.sink = sink

    async def record_message(
        self,
        message: Message,
        verdict: Verdict,
        decision: Decision,
        *,
        case_id: str,
        latency_ms: float,
    ) -> None:
        """See :meth:`AuditTrail.record_message`: the message, then the decision taken on it."""
        at = time.time()
        summary = {
            "case_id": case_id,
            "actions": [a.value for a in decision.actions],
            "strikes": decision.strikes,
            "rules_version": verdict.rules_version,
        }
        await self.sink.record(
            [
                message_entry(message, verdict, decision, screened_at=at, latency_ms=latency_ms),
                action_entry(message, "decision", "recorded", summary, key="decision"),
            ]
        )

    async def record_action(
        self, message: Message, action: Action, *, case_id: str, outcome: str, detail: str
    ) -> None:
        """See :meth:`AuditTrail.record_action`."""
        entry = action_entry(
            message,
            action.value,
            outcome,
            {"case_id": case_id, "detail": detail},
            # One record per action and outcome: a replay after a crash adds nothing, but a
            # failure followed by a later success is kept as both.
            key=f"{action.value}:{outcome}",
        )
        await self.sink.record([entry])


@dataclass(slots=True)
class MemoryAuditTrail:
    """A trail in memory: tests, and a bot started without an archive."""

    messages: list[tuple[Message, Verdict, Decision, str]] = field(default_factory=list)
    actions: list[tuple[str, Action, str, str, str]] = field(default_factory=list)

    async def record_message(
        self,
        message: Message,
        verdict: Verdict,
        decision: Decision,
        *,
        case_id: str,
        latency_ms: float,
    ) -> None:
        """See :meth:`AuditTrail.record_message`."""
        del latency_ms
        self.messages.append((message, verdict, decision, case_id))

    async def record_action(
        self, message: Message, action: Action, *, case_id: str, outcome: str, detail: str
    ) -> None:
        """See :meth:`AuditTrail.record_action`."""
        self.actions.append((message.id, action, case_id, outcome, detail))


class _DiscardSink:
    """A sink that keeps nothing."""

    async def record(self, entries: Sequence[Entry]) -> Sequence[int | str]:
        """Drop ``entries``."""
        del entries
        return []


class DiscardAuditTrail(SinkAuditTrail):
    """No archive (``audit.sink = none``): records are dropped, which start-up logs loudly."""

    def __init__(self) -> None:
        """A trail over a sink that keeps nothing."""
        super().__init__(_DiscardSink())
