"""The local DingTalk simulator, driven by the real dingtalk-stream 0.24.3 SDK."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import dingtalk_stream
import pytest
import requests

from bot.simulator import FLOW_CONTROL_CODE, SimulatorThread

from .sdk_harness import SdkClient

GROUP = "cidTradingDesk=="


class RecordingHandler(dingtalk_stream.ChatbotHandler):
    """Records every message; optionally replies through the session webhook."""

    def __init__(self, reply: str | None = None) -> None:
        super().__init__()
        self.reply = reply
        self.messages: list[Any] = []
        self.lock = threading.Lock()

    async def process(self, callback: dingtalk_stream.CallbackMessage) -> tuple[int, str]:
        message = dingtalk_stream.ChatbotMessage.from_dict(callback.data)
        with self.lock:
            self.messages.append(message)
        if self.reply:
            self.reply_text(self.reply, message)
        return dingtalk_stream.AckMessage.STATUS_OK, "OK"

    def texts(self) -> list[str]:
        with self.lock:
            return [m.text.content for m in self.messages]


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread() as simulator:
        yield simulator


def token(sim: SimulatorThread) -> str:
    response = requests.post(
        f"{sim.base_url}/v1.0/oauth2/accessToken",
        json={"appKey": sim.client_id, "appSecret": sim.client_secret},
        timeout=5,
    )
    return str(response.json()["accessToken"])


def group_send(sim: SimulatorThread, access_token: str | None) -> requests.Response:
    headers = {"x-acs-dingtalk-access-token": access_token} if access_token else {}
    body = {
        "robotCode": sim.client_id,
        "openConversationId": GROUP,
        "msgKey": "sampleMarkdown",
        "msgParam": json.dumps({"title": "t", "text": "hello"}),
    }
    return requests.post(
        f"{sim.base_url}/v1.0/robot/groupMessages/send", json=body, headers=headers, timeout=5
    )


def test_group_message_reaches_the_sdk_handler_and_is_acked(sim: SimulatorThread) -> None:
    handler = RecordingHandler()
    with SdkClient(sim, handler):
        assert sim.wait_for(lambda: sim.connection_count == 1)
        msg_id = sim.push_group_message(GROUP, "buy now 0700.HK", sender_nick="Bob Lee")
        assert sim.wait_for(lambda: handler.texts() == ["buy now 0700.HK"])
        assert sim.wait_for(lambda: len(sim.acks()) == 1)
    message = handler.messages[0]
    assert message.message_id == msg_id
    assert message.conversation_id == GROUP
    assert message.sender_nick == "Bob Lee"
    assert message.conversation_type == "2"
    (ack,) = sim.acks()
    assert ack["code"] == 200
    assert json.loads(ack["data"]) == {"response": "OK"}


def test_ping_is_acked_with_its_opaque_value(sim: SimulatorThread) -> None:
    with SdkClient(sim, RecordingHandler()):
        assert sim.wait_for(lambda: sim.connection_count == 1)
        sim.ping()
        assert sim.wait_for(lambda: len(sim.acks()) == 1)
    assert "opaque" in json.loads(sim.acks()[0]["data"])


def test_sdk_reply_goes_to_the_session_webhook(sim: SimulatorThread) -> None:
    with SdkClient(sim, RecordingHandler(reply="收到 / noted")):
        assert sim.wait_for(lambda: sim.connection_count == 1)
        sim.push_group_message(GROUP, "hello", sender_staff_id="staff42")
        assert sim.wait_for(lambda: len(sim.session_replies()) == 1)
    (reply,) = sim.session_replies()
    assert reply["conversation_id"] == GROUP
    assert reply["text"]["content"] == "收到 / noted"
    assert reply["at"]["atUserIds"] == ["staff42"]


def test_group_send_needs_a_valid_token(sim: SimulatorThread) -> None:
    refused = group_send(sim, None)
    assert refused.status_code == 401
    assert set(refused.json()) == {"code", "message", "requestid"}
    accepted = group_send(sim, token(sim))
    assert accepted.status_code == 200
    (sent,) = sim.group_messages(GROUP)
    assert sent["param"] == {"title": "t", "text": "hello"}
    assert accepted.json()["processQueryKey"] == sent["process_query_key"]


def test_injected_server_errors_and_flow_control(sim: SimulatorThread) -> None:
    access_token = token(sim)
    sim.faults.fail_next = 1
    sim.faults.throttle_next = 1
    assert group_send(sim, access_token).status_code == 500
    throttled = group_send(sim, access_token)
    assert throttled.status_code == 403
    assert throttled.json()["code"] == FLOW_CONTROL_CODE
    assert group_send(sim, access_token).status_code == 200
    assert len(sim.group_messages()) == 1


def test_wrong_secret_cannot_open_a_connection(sim: SimulatorThread) -> None:
    response = requests.post(
        f"{sim.base_url}/v1.0/gateway/connections/open",
        json={"clientId": sim.client_id, "clientSecret": "wrong"},
        timeout=5,
    )
    assert response.status_code == 401
    # The secret is never recorded.
    assert all("clientSecret" not in (r.body or {}) for r in sim.received())


def test_frames_pushed_while_offline_are_delivered_after_an_abrupt_drop(
    sim: SimulatorThread,
) -> None:
    handler = RecordingHandler()
    with SdkClient(sim, handler):
        assert sim.wait_for(lambda: sim.connection_count == 1)
        sim.drop_connections()
        assert sim.wait_for(lambda: sim.connection_count == 0)
        assert sim.push_group_message(GROUP, "sent during the outage")  # queued, not lost
        # SDK 0.24.3 waits 10 s before reconnecting after an abrupt drop.
        assert sim.wait_for(lambda: handler.texts() == ["sent during the outage"], timeout=20)
    assert sim.connections_opened == 2


def test_disconnect_frame_makes_the_sdk_reconnect(sim: SimulatorThread) -> None:
    handler = RecordingHandler()
    with SdkClient(sim, handler):
        assert sim.wait_for(lambda: sim.connection_count == 1)
        sim.send_disconnect(close_after=0.2)
        assert sim.wait_for(lambda: sim.connections_opened >= 2, timeout=15)
        sim.push_group_message(GROUP, "after reconnect")
        assert sim.wait_for(lambda: handler.texts() == ["after reconnect"])


def test_expired_or_unknown_session_webhook_answers_an_errcode(sim: SimulatorThread) -> None:
    response = requests.post(
        f"{sim.base_url}/robot/sendBySession?session=nope",
        json={"msgtype": "text", "text": {"content": "x"}},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.json()["errcode"] != 0
