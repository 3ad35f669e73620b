"""The simulator end to end with the real dingtalk-stream 0.24.3 SDK, and pointing the SDK at it."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import dingtalk_stream
import pytest

from bot.simulator import BOT_TOPIC, CARD_TOPIC, SimulatorThread, point_sdk_at
from tests.simulator.clients import GROUP, CardHandler, RecordingHandler, connected
from tests.support.sdk import SdkClient


def test_group_message_reaches_the_sdk_handler_and_its_ack_is_recorded(
    sim: SimulatorThread,
) -> None:
    handler = RecordingHandler()
    with connected(SdkClient(sim, handler), sim):
        msg_id = sim.push_group_message(
            GROUP, "buy now 0700.HK", sender_nick="Bob Lee", sender_staff_id="staff42"
        )
        (frame_id,) = sim.pushed()
        assert sim.wait_for(lambda: sim.ack_for(frame_id) is not None)
    (message,) = handler.messages
    assert message.text.content == "buy now 0700.HK"
    assert message.message_id == msg_id
    assert message.conversation_id == GROUP
    assert (message.sender_nick, message.sender_staff_id) == ("Bob Lee", "staff42")
    assert message.conversation_type == "2"
    assert message.robot_code == sim.robot_code
    assert message.is_in_at_list is True
    assert message.session_webhook.startswith(f"{sim.base_url}/robot/sendBySession?session=")
    ack_frame = sim.ack_for(frame_id)
    assert ack_frame is not None
    assert ack_frame["code"] == 200
    assert json.loads(ack_frame["data"]) == {"response": "OK"}
    # What the SDK asked for, and that the secret and the ticket were never recorded.
    assert sim.subscriptions() == [{"type": "CALLBACK", "topic": BOT_TOPIC}]
    (opened,) = sim.received("/v1.0/gateway/connections/open")
    assert opened.body["clientId"] == sim.client_id
    assert "clientSecret" not in opened.body
    assert opened.headers["User-Agent"].startswith("DingTalkStream/1.0 SDK/0.24.3")
    (upgrade,) = sim.received("/connect")
    assert upgrade.query == {"ticket": "***"}


def test_ping_is_acked_with_its_opaque_value(sim: SimulatorThread) -> None:
    with connected(SdkClient(sim, RecordingHandler()), sim):
        opaque = sim.ping()
        assert sim.wait_for(lambda: len(sim.acks()) == 1)
    (pong,) = sim.acks()
    assert pong["code"] == 200
    assert pong["message"] == "OK"
    assert json.loads(pong["data"]) == {"opaque": opaque}


def test_sdk_replies_go_to_the_session_webhook_and_mention_the_sender(
    sim: SimulatorThread,
) -> None:
    with connected(SdkClient(sim, RecordingHandler(reply="收到 / noted")), sim):
        sim.push_group_message(GROUP, "hello", sender_staff_id="staff42")
        assert sim.wait_for(lambda: len(sim.session_replies()) == 2)
    text, markdown = sim.session_replies(GROUP)
    assert text["msgtype"] == "text"
    assert text["text"] == {"content": "收到 / noted"}
    assert markdown["markdown"] == {"title": "notice", "text": "**收到 / noted**"}
    assert text["at"] == markdown["at"] == {"atUserIds": ["staff42"]}
    assert all(r.query == {"session": "***"} for r in sim.received("/robot/sendBySession"))


def test_sdk_cards_are_sent_updated_and_their_button_callbacks_acked(
    sim: SimulatorThread,
) -> None:
    handler = RecordingHandler(card=True)
    buttons = CardHandler()
    sdk = SdkClient(sim, handler)
    sdk.client.register_callback_handler(CARD_TOPIC, buttons)
    with connected(sdk, sim):
        sim.push_group_message(GROUP, "please review", sender_staff_id="staff42")
        assert sim.wait_for(lambda: len(sim.cards()) == 2)
        callback_id = sim.push_card_callback(handler.card_ids[0], "staff42", {"decision": "ok"})
        assert sim.wait_for(lambda: sim.ack_for(callback_id) is not None)
    sent, update = sim.cards()
    assert sent["openConversationId"] == GROUP
    assert sent["robotCode"] == sim.robot_code
    assert json.loads(sent["cardData"]) == {"title": "review"}
    assert json.loads(sent["sendOptions"]["atUserListJson"])[0]["userId"] == "staff42"
    assert update["update"] is True
    assert update["cardBizId"] == sent["cardBizId"] == handler.card_ids[0]
    (pressed,) = buttons.pressed
    assert pressed.card_instance_id == handler.card_ids[0]
    assert pressed.content["cardPrivateData"]["params"] == {"decision": "ok"}
    answer = sim.ack_for(callback_id)
    assert answer is not None
    assert json.loads(answer["data"]) == {
        "response": {"cardData": {"cardParamMap": {"status": "done"}}}
    }


def test_sdk_reconnects_after_a_socket_drop_and_gets_what_was_queued_meanwhile(
    sim: SimulatorThread,
) -> None:
    handler = RecordingHandler()
    # SDK 0.24.3 sleeps 10 s before reconnecting after an abrupt drop (code 1006): capped here.
    with connected(SdkClient(sim, handler, max_sleep=0.2), sim) as sdk:
        assert sim.drop_connections() == 1
        assert sim.connection_count == 0
        sim.push_group_message(GROUP, "sent during the outage")
        assert sim.pending == 1  # held by the gateway, not lost
        assert sim.wait_for(lambda: handler.texts() == ["sent during the outage"], timeout=5)
        assert sim.wait_for(lambda: len(sim.acks()) == 1)
    assert sdk.sleeps is not None
    assert 10 in sdk.sleeps.slept  # the SDK's own reconnect-after-a-network-error path ran
    assert sim.connections_opened == 2
    assert sim.pending == 0
    assert len(sim.received("/v1.0/gateway/connections/open")) == 2
    assert dingtalk_stream.stream.asyncio is asyncio  # the SDK module has its asyncio back


def test_sdk_acks_a_disconnect_reconnects_at_once_and_gets_the_frames_of_the_window(
    sim: SimulatorThread,
) -> None:
    handler = RecordingHandler()
    with connected(SdkClient(sim, handler), sim):
        assert sim.send_disconnect(close_after=10.0, wait=False) == 1
        # Nothing more goes to a socket that was told to disconnect: this one waits.
        assert sim.push_group_message(GROUP, "inside the window")
        assert sim.wait_for(lambda: handler.texts() == ["inside the window"], timeout=5)
        assert sim.wait_for(lambda: len(sim.acks()) == 2)  # the disconnect's and the message's
        assert sim.connections_opened == 2
    disconnect_ack = next(a for a in sim.acks() if "reason" in json.loads(a["data"]))
    assert disconnect_ack["code"] == 200


def test_point_sdk_at_redirects_every_copy_and_stubs_the_ip_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_PROXY", "example.internal")
    stream = dingtalk_stream.stream
    monkeypatch.setattr(
        stream.DingTalkStreamClient, "get_host_ip", stream.DingTalkStreamClient.get_host_ip
    )
    point_sdk_at("http://127.0.0.1:9/")
    for module in (
        dingtalk_stream.utils,
        stream,
        dingtalk_stream.chatbot,
        dingtalk_stream.card_replier,
    ):
        assert module.DINGTALK_OPENAPI_ENDPOINT == "http://127.0.0.1:9"
    client_class = dingtalk_stream.DingTalkStreamClient
    assert client_class.OPEN_CONNECTION_API == "http://127.0.0.1:9/v1.0/gateway/connections/open"
    assert client_class(dingtalk_stream.Credential("id", "secret")).get_host_ip() == "127.0.0.1"
    assert "websockets.exceptions" in sys.modules
    assert os.environ["NO_PROXY"] == "example.internal,127.0.0.1"
