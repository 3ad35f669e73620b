"""What the audit tests build records from: messages, outcomes, entries; an insider's access."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from bot.audit import Archive, KeyRing
from bot.audit.entries import message_entry
from bot.audit.records import Entry
from bot.domain import Action, Category, Decision, Finding, Message, Severity, Verdict

YEAR = 365.25 * 86400


def message(
    n: int | str, *, group: str = "cidDesk", sender: str = "staff1", text: str = "hello"
) -> Message:
    return Message(
        id=f"m{n}",
        text=text,
        conversation_id=group,
        conversation_title="Equities desk",
        sender_id=sender,
        sender_name="Alice Chan",
        source="dingtalk",
    )


def outcome(category: Category | None = None) -> tuple[Verdict, Decision]:
    """A verdict and the decision on it: one HKID finding in ``category``, or clean."""
    findings: tuple[Finding, ...] = ()
    if category is not None:
        findings = (
            Finding("hkid", category, Severity.HIGH, 5, 15, 0.95, "checksum ok", "HKID", True),
        )
    verdict = Verdict(
        findings,
        (category,) if category else (),
        Severity.HIGH if category else None,
        "rules-v1",
    )
    decision = Decision(
        (Action.LOG, Action.WARN) if category else (Action.LOG,),
        "客戶 HKID A1*****(*)" if category else "hello",
    )
    return verdict, decision


def entries(count: int, *, start: int = 0, at: float | None = None, **kwargs: Any) -> list[Entry]:
    return [
        message_entry(
            message(i, **kwargs),
            *outcome(),
            screened_at=time.time() if at is None else at,
            latency_ms=1.0,
        )
        for i in range(start, start + count)
    ]


def raw(archive: Archive) -> sqlite3.Connection:
    """A plain connection: what an insider with file access but no key can do."""
    return sqlite3.connect(archive.path, isolation_level=None)


def reopen(archive: Archive, ring: KeyRing | None = None, **kwargs: Any) -> Archive:
    archive.close()
    return Archive(archive.path, ring or archive.ring, **kwargs)
