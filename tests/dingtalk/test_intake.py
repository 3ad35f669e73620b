"""Frames to Messages, and a handler that ACKs fast and never raises."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from dingtalk_stream import AckMessage, CallbackMessage

from bot.dingtalk.intake import ComplianceHandler, message_from_callback
from bot.domain import Message
from tests.support.fakes import new_supervisor

DATA: dict[str, Any] = {
    "conversationId": "cidAsXSBLnA==",
    "chatbotUserId": "$:LWCP_v1:$bot",
    "msgId": "msg3811==",
    "senderNick": "Alice Chan",
    "senderStaffId": "manager4521",
    "senderId": "$:LWCP_v1:$alice",
    "conversationType": "2",
    "conversationTitle": "HK Desk - Equities",
    "isInAtList": True,
    "createAt": 1795389084864,
    "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=abc",
    "sessionWebhookExpiredTime": 1795394484864,
    "robotCode": "dingtestappkey",
    "msgtype": "text",
    "text": {"content": " hello, please buy 10k 0700.HK for client A"},
}


def test_text_frame_becomes_a_message_with_sender_group_and_webhook() -> None:
    message = message_from_callback(DATA)
    assert message is not None
    assert message.id == "msg3811=="
    assert message.text == "hello, please buy 10k 0700.HK for client A"
    assert message.conversation_id == "cidAsXSBLnA=="
    assert message.conversation_title == "HK Desk - Equities"
    assert message.sender_id == "manager4521"
    assert message.sender_staff_id == "manager4521"
    assert message.sender_name == "Alice Chan"
    assert message.source == "dingtalk"
    assert message.session_webhook.startswith("https://oapi.dingtalk.com/")
    assert message.sent_at is not None
    assert message.sent_at.year == 2026


def test_rich_text_and_audio_give_their_text_and_pictures_are_kept_empty() -> None:
    rich = {
        **DATA,
        "msgtype": "richText",
        "content": {
            "richText": [
                {"text": "line one"},
                {"downloadCode": "x", "type": "picture"},
                {"text": "line two"},
            ]
        },
    }
    rich.pop("text")
    audio = {**DATA, "msgtype": "audio", "content": {"recognition": "加我微信"}}
    picture = {**DATA, "msgtype": "picture", "content": {"downloadCode": "x"}}
    assert message_from_callback(rich) == message_from_callback(rich)
    assert (message_from_callback(rich) or Message("", "")).text == "line one\nline two"
    assert (message_from_callback(audio) or Message("", "")).text == "加我微信"
    empty = message_from_callback(picture)
    assert empty is not None
    assert empty.text == ""  # still accepted: the audit record shows it arrived


def test_the_bots_own_message_and_frames_without_an_id_are_ignored() -> None:
    own = {**DATA, "senderId": DATA["chatbotUserId"]}
    assert message_from_callback(own) is None
    assert message_from_callback({"msgtype": "text", "text": {"content": "x"}}) is None
    assert message_from_callback({"msgtype": "text"}, "frame-id") is not None


def callback(data: dict[str, Any]) -> Any:
    return CallbackMessage.from_dict(
        {
            "specVersion": "1.0",
            "type": "CALLBACK",
            "headers": {"messageId": "frame-1", "topic": "/v1.0/im/bot/messages/get"},
            "data": json.dumps(data),
        }
    )


async def test_handler_acks_200_once_the_message_is_accepted() -> None:
    accepted: list[Message] = []

    async def accept(message: Message) -> None:
        accepted.append(message)

    handler = ComplianceHandler(accept, new_supervisor(), timeout=1)
    ack = await handler.raw_process(callback(DATA))
    assert ack.code == AckMessage.STATUS_OK
    assert ack.headers.message_id == "frame-1"
    assert [m.id for m in accepted] == ["msg3811=="]


async def test_handler_never_raises_so_the_sdk_always_acks() -> None:
    async def broken(message: Message) -> None:
        raise RuntimeError("disk full")

    async def slow(message: Message) -> None:
        await asyncio.sleep(10)

    supervisor = new_supervisor()
    metrics = supervisor.metrics
    for accept in (broken, slow):
        handler = ComplianceHandler(accept, supervisor, timeout=0.05)
        ack = await handler.raw_process(callback(DATA))
        assert ack.code == AckMessage.STATUS_SYSTEM_EXCEPTION
    assert metrics.sample("bot_errors_total", stage="intake") == 2

    accepted: list[Message] = []

    async def keep(message: Message) -> None:
        accepted.append(message)

    garbage = callback(DATA)
    garbage.data = "not a dict"
    ack = await ComplianceHandler(keep, supervisor, timeout=1).raw_process(garbage)
    assert ack.code == AckMessage.STATUS_OK
    assert [(m.id, m.text) for m in accepted] == [("frame-1", "")]  # kept, never dropped
