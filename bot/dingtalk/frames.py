"""A robot-message callback's ``data`` as a :class:`Message` (DingTalk's field names end here)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bot.domain import Message


def message_from_callback(data: Mapping[str, Any], frame_message_id: str = "") -> Message | None:
    """A robot-message callback's ``data`` as a Message; None when there is nothing to screen.

    Text comes from ``text.content`` (text), the text parts of ``content.richText``, or the
    speech ``recognition`` of audio. Pictures, files and video have no text: they are still
    accepted (with empty text) so the audit record shows they were received.
    """
    message_id = str(data.get("msgId") or frame_message_id or "")
    if not message_id:
        return None
    if data.get("senderId") and data.get("senderId") == data.get("chatbotUserId"):
        return None  # our own robot's message
    kind = data.get("msgtype", "")
    text = ""
    if kind == "text":
        text = str((data.get("text") or {}).get("content", ""))
    elif kind == "richText":
        parts = (data.get("content") or {}).get("richText") or []
        text = "\n".join(str(p["text"]) for p in parts if isinstance(p, dict) and "text" in p)
    elif kind == "audio":
        text = str((data.get("content") or {}).get("recognition", ""))
    created = data.get("createAt")
    sent_at = (
        datetime.fromtimestamp(int(created) / 1000, UTC)
        if isinstance(created, int | str) and str(created).isdigit()
        else None
    )
    return Message(
        id=message_id,
        text=text.strip(),
        conversation_id=str(data.get("conversationId", "")),
        conversation_title=str(data.get("conversationTitle", "")),
        sender_id=str(data.get("senderStaffId") or data.get("senderId") or ""),
        sender_name=str(data.get("senderNick", "")),
        source="dingtalk",
        sent_at=sent_at,
        session_webhook=str(data.get("sessionWebhook", "")),
        sender_staff_id=str(data.get("senderStaffId", "")),
    )
