"""The records the bot writes: a message with its verdict and decision, an action, a review."""

from __future__ import annotations

import getpass
import os
import time
import uuid
from typing import Any

from bot.audit.records import Entry
from bot.domain import Decision, Message, Verdict

# What reviewers decide (regulation notes: Resolve / False positive / Escalate / Notify).
REVIEW_DECISIONS = ("resolved", "false_positive", "escalated", "notified", "note")


# Kept in the columns (message id, group) or encrypted on their own (sender id); a
# sessionWebhook is a short-lived reply credential and is never archived.
_NOT_IN_PAYLOAD = ("id", "conversation_id", "sender_id", "session_webhook")


def operator_name() -> str:
    """Who is running this (recorded with purges, exports and reviews); never raises."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry and no $USER
        return f"uid:{os.getuid()}"


def message_entry(
    message: Message,
    verdict: Verdict,
    decision: Decision,
    *,
    screened_at: float,
    latency_ms: float,
) -> Entry:
    """Every screened message, clean or not: original text, people, places, times, verdict."""
    payload = {k: v for k, v in message.to_dict().items() if k not in _NOT_IN_PAYLOAD}
    payload.update(verdict.to_dict())
    payload.update(decision.to_dict())
    payload.update(
        screened_at=screened_at,
        latency_ms=round(latency_ms, 3),
        rule_ids=sorted({f.rule_id for f in verdict.findings}),
        # Seen but under the threshold: answers "why did the bot not act on this?"
        below_threshold=[f.to_dict() for f in verdict.below_threshold],
    )
    return Entry(
        record_key=f"message:{message.id}",
        kind="message",
        message_id=message.id,
        conversation_id=message.conversation_id,
        sender_id=message.sender_id,
        categories=tuple(c.value for c in verdict.categories),
        at=screened_at,
        payload=payload,
    )


def action_entry(
    message: Message, action: str, status: str, detail: dict[str, Any], *, key: str | None = None
) -> Entry:
    """An action taken or failed (warning sent, escalation failed, retrying, error...).

    ``key`` makes the record idempotent (``action:<msgId>:<key>``), e.g. ``warn:sent`` or
    ``warn:failed:2``: a replay after a crash adds nothing, while a failure followed by a
    success is kept as both. Without it every call is a new record.
    """
    return Entry(
        record_key=f"action:{message.id}:{key or uuid.uuid4().hex}",
        kind="action",
        message_id=message.id,
        conversation_id=message.conversation_id,
        sender_id=message.sender_id,
        categories=(),
        at=time.time(),
        payload={"action": action, "status": status, "detail": detail},
    )


def review_entry(
    message_id: str,
    reviewer: str,
    decision: str,
    note: str,
    *,
    conversation_id: str = "",
    sender_id: str = "",
    key: str | None = None,
) -> Entry:
    """A compliance reviewer's later decision on a message (appended, never edited).

    ``conversation_id`` and ``sender_id`` are those of the reviewed message, so group exports
    and data-access requests find the review with the message.
    """
    if decision not in REVIEW_DECISIONS:
        raise ValueError(
            f"unknown review decision {decision!r}; use {', '.join(REVIEW_DECISIONS)}"
        )
    return Entry(
        record_key=f"review:{message_id}:{key or uuid.uuid4().hex}",
        kind="review",
        message_id=message_id,
        conversation_id=conversation_id,
        sender_id=sender_id,
        categories=(),
        at=time.time(),
        payload={"reviewer": reviewer, "decision": decision, "note": note},
    )
