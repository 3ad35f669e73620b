"""Builds Stream frames the way DingTalk sends them: robot messages, card callbacks, SYSTEM."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

BOT_TOPIC = "/v1.0/im/bot/messages/get"
CARD_TOPIC = "/v1.0/card/instances/callback"
PING_TOPIC = "ping"
DISCONNECT_TOPIC = "disconnect"
SESSION_LIFETIME = 90 * 60.0  # a sessionWebhook expires 90 minutes after its message


def now_ms() -> int:
    """Wall-clock milliseconds, the unit of every DingTalk timestamp."""
    return int(time.time() * 1000)


def new_message_id() -> str:
    """A frame messageId shaped like DingTalk's (``8ae936a0_864_531f4721cbb_fd511``)."""
    raw = uuid.uuid4().hex
    return f"{raw[:8]}_{now_ms() % 1000}_{raw[8:19]}_{raw[19:24]}"


def frame(
    app_id: str,
    frame_type: str,
    topic: str,
    data: dict[str, Any],
    *,
    message_id: str | None = None,
) -> dict[str, Any]:
    """One server -> client frame.

    DingTalk sends ``data`` as a JSON *string* (the SDK ``json.loads`` it) and ``time`` as
    milliseconds in a string; both are reproduced here because clients trip over them.
    """
    return {
        "specVersion": "1.0",
        "type": frame_type,
        "headers": {
            "appId": app_id,
            "contentType": "application/json",
            "messageId": message_id or new_message_id(),
            "time": str(now_ms()),
            "topic": topic,
        },
        "data": json.dumps(data, ensure_ascii=False),
    }


def frame_data(pushed: dict[str, Any]) -> dict[str, Any]:
    """The decoded ``data`` of a frame (DingTalk sends it as a JSON string)."""
    data: dict[str, Any] = json.loads(pushed["data"])
    return data


def robot_message_data(
    *,
    conversation_id: str,
    text: str,
    robot_code: str,
    session_webhook: str,
    msg_id: str,
    sender_nick: str,
    sender_staff_id: str,
    conversation_title: str,
    at_bot: bool,
    msgtype: str,
    conversation_type: str,
    created_ms: int,
) -> dict[str, Any]:
    """The ``data`` of a robot-message callback, field for field as DingTalk fills it.

    User and robot ids are opaque ``$:LWCP_v1:$…`` strings in real frames; only
    ``senderStaffId`` is the staff id an OpenAPI call (or an ``at``) takes. ``text`` lands
    where DingTalk puts text for ``msgtype``: ``text.content``, the ``richText`` parts, or
    an audio ``recognition``; for pictures, files and video there is no text at all.
    """
    robot_user = f"$:LWCP_v1:$robot-{robot_code}"
    data: dict[str, Any] = {
        "conversationId": conversation_id,
        "chatbotUserId": robot_user,
        "msgId": msg_id,
        "senderNick": sender_nick,
        "senderStaffId": sender_staff_id,
        "senderId": f"$:LWCP_v1:$user-{sender_staff_id}",
        "conversationType": conversation_type,
        "isAdmin": False,
        "chatbotCorpId": "dingsimulatorcorp",
        "senderCorpId": "dingsimulatorcorp",
        "createAt": created_ms,
        "sessionWebhook": session_webhook,
        "sessionWebhookExpiredTime": created_ms + int(SESSION_LIFETIME * 1000),
        "robotCode": robot_code,
        "msgtype": msgtype,
    }
    if conversation_type == "2":  # only group frames carry a title and the @-list
        data["conversationTitle"] = conversation_title
        data["isInAtList"] = at_bot
        data["atUsers"] = [{"dingtalkId": robot_user}] if at_bot else []
    download_code = uuid.uuid4().hex
    if msgtype == "text":
        data["text"] = {"content": text}
    elif msgtype == "richText":
        data["content"] = {"richText": [{"text": text}]}
    elif msgtype == "picture":
        data["content"] = {"downloadCode": download_code, "pictureDownloadCode": download_code}
    elif msgtype == "file":
        data["content"] = {
            "fileName": text or "report.pdf",
            "downloadCode": download_code,
            "spaceId": "simulatorspace",
            "fileId": uuid.uuid4().hex[:12],
        }
    elif msgtype == "audio":
        data["content"] = {"duration": 4000, "downloadCode": download_code, "recognition": text}
    elif msgtype == "video":
        data["content"] = {"duration": 10, "downloadCode": download_code, "videoType": "mp4"}
    else:  # DingTalk's own name for message kinds a robot cannot read
        data["msgtype"] = "unknownMsgType"
        data["content"] = {"unknownMsgType": msgtype}
    return data


def card_callback_data(
    out_track_id: str, user_id: str, params: dict[str, Any], action_ids: list[str] | None
) -> dict[str, Any]:
    """The ``data`` of a card callback: a user pressed a button on an interactive card.

    ``content`` and ``extension`` are JSON strings inside the JSON-string ``data``; the SDK's
    ``CardCallbackMessage.from_dict`` decodes both.
    """
    content = {"cardPrivateData": {"actionIds": action_ids or list(params), "params": params}}
    return {
        "outTrackId": out_track_id,
        "userId": user_id,
        "corpId": "dingsimulatorcorp",
        "type": "actionCallback",
        "content": json.dumps(content, ensure_ascii=False),
        "extension": "{}",
        "spaceType": "IM",
        "spaceId": "simulatorspace",
    }
