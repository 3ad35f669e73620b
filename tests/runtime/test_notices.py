"""Warnings and escalations: what they say (and never say), and how bursts are aggregated."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from bot.domain import Category, Message, Severity
from bot.runtime.notices import (
    MAX_CHUNK_BYTES,
    Notice,
    RuleNote,
    render_escalations,
    render_rules_rejected,
    render_warning,
)

HKID_NOTE = RuleNote(
    "hkid",
    "Hong Kong identity card number",
    Category.PII,
    Severity.HIGH,
    "請勿在群組內發送香港身份證號碼。",
    "Do not post Hong Kong identity card numbers in the group.",
)


MESSAGE_FIELDS = {f.name for f in dataclasses.fields(Message)}


def notice(n: int = 1, **changes: object) -> Notice:
    message: dict[str, object] = {
        "id": f"m{n}",
        "text": "客戶身份證號碼 K765432(4)",  # the raw text: never rendered
        "sender_id": f"staff{n}",
        "sender_name": "Dave *Wong*",
        "sender_staff_id": f"staff{n}",
        "conversation_id": "cidDesk==",
        "conversation_title": "HK Desk - Equities",
        "source": "dingtalk",
        "sent_at": datetime(2025, 1, 1, 1, 2, 3, tzinfo=UTC),
        "session_webhook": "http://127.0.0.1/robot/sendBySession?session=x",
    }
    base: dict[str, object] = {
        "case_id": f"C20250101-{n:08X}",
        "rules": (HKID_NOTE,),
        "severity": Severity.HIGH,
        "redacted": "客戶身份證號碼 K765***(*)",
        "escalation_text": "客戶身份證號碼 K765***(*)",
    }
    for key, value in changes.items():
        (message if key in MESSAGE_FIELDS else base)[key] = value
    return Notice(message=Message(**message), **base)  # type: ignore[arg-type]


def test_warning_is_bilingual_mentions_the_sender_and_names_the_rule() -> None:
    title, text, at = render_warning([notice()], 10)
    assert title == "合規提示 Compliance notice"
    assert at == ["staff1"]
    assert "@staff1" in text
    assert "Hong Kong identity card number" in text
    assert "請勿在群組內發送香港身份證號碼" in text
    assert "Do not post Hong Kong identity card numbers" in text
    assert "K765***(*)" in text
    assert "K765432" not in text


def test_warning_without_redact_action_does_not_quote_the_message() -> None:
    _, text, _ = render_warning([notice(redacted=None)], 10)
    assert "身份證號碼 K765" not in text


def test_burst_summary_counts_messages_and_rules_without_quoting_any() -> None:
    notices = [notice(n % 3) for n in range(20)]
    _, text, at = render_warning(notices, 10)
    assert "(20)" in text
    assert "×20" in text  # the rule, counted
    assert sorted(at) == ["staff0", "staff1", "staff2"]
    assert "K765" not in text
    assert "個人資料" in text
    assert "personal data" in text


def test_escalation_carries_case_sender_group_rules_severity_and_redacted_text() -> None:
    ((title, text),) = render_escalations(
        [notice(strikes=3, repeat_offender=True, repeat_window_minutes=60)]
    )
    assert "C20250101-00000001" in title
    assert "Dave  Wong" in text  # markdown from a display name is neutralised
    assert "staff1" in text
    assert "HK Desk - Equities (cidDesk==)" in text
    assert "(`hkid`)" in text
    assert "高 HIGH" in text
    assert "repeat offender: 3 flagged messages in 60 min" in text
    assert "> 客戶身份證號碼 K765***(*)" in text
    assert "2025-01-01 09:02:03 HKT" in text


def test_many_escalations_are_split_under_the_dingtalk_size_limit() -> None:
    long = "風險" * 400
    chunks = render_escalations([notice(n, escalation_text=long) for n in range(60)])
    assert len(chunks) > 1
    assert all(len(text.encode()) <= MAX_CHUNK_BYTES for _, text in chunks)
    joined = "".join(text for _, text in chunks)
    assert all(f"C20250101-{n:08X}" in joined for n in range(60))


def test_rejected_rules_notice_lists_problems_and_the_running_version() -> None:
    title, text = render_rules_rejected("bot-1", "abc123", ["rules/pii/x.yaml:3: bad severity"])
    assert "Rule update rejected" in title
    assert "abc123" in text
    assert "rules/pii/x.yaml:3: bad severity" in text


def test_session_webhook_is_not_used_once_expired() -> None:
    sent = datetime.now(UTC) - timedelta(minutes=89)
    assert not notice(sent_at=sent).webhook_alive(datetime.now(UTC))
    assert notice(sent_at=datetime.now(UTC)).webhook_alive(datetime.now(UTC))
