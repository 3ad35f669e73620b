"""The local DingTalk simulator, driven by the real dingtalk-stream 0.24.3 SDK and raw clients."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus

import dingtalk_stream
import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from bot.simulator import (
    BOT_TOPIC,
    CARD_TOPIC,
    FLOW_CONTROL_CODE,
    THROTTLING_CODE,
    SimulatorThread,
    frame_data,
    point_sdk_at,
)
from bot.simulator.__main__ import main
from tests.support.sdk import SdkClient

GROUP = "cidTradingDesk=="


class RecordingHandler(dingtalk_stream.ChatbotHandler):  # type: ignore[misc]  # untyped SDK
    """Records every message; optionally replies through the session webhook or a card."""

    def __init__(self, reply: str | None = None, card: bool = False) -> None:
        super().__init__()
        self.reply = reply
        self.card = card
        self.messages: list[Any] = []
        self.card_ids: list[str] = []
        self.lock = threading.Lock()

    async def process(self, callback: dingtalk_stream.CallbackMessage) -> tuple[int, str]:
        message = dingtalk_stream.ChatbotMessage.from_dict(callback.data)
        if self.reply:
            self.reply_text(self.reply, message)
            self.reply_markdown("notice", f"**{self.reply}**", message)
        if self.card:
            card_id = self.reply_card({"title": "review"}, message, at_sender=True)
            self.update_card(card_id, {"title": "reviewed"})
            self.card_ids.append(card_id)
        with self.lock:
            self.messages.append(message)
        return dingtalk_stream.AckMessage.STATUS_OK, "OK"

    def texts(self) -> list[str]:
        with self.lock:
            return [m.text.content for m in self.messages]


class CardHandler(dingtalk_stream.CallbackHandler):  # type: ignore[misc]  # untyped SDK
    """Answers a card button press with new card data, as a card callback may."""

    def __init__(self) -> None:
        super().__init__()
        self.pressed: list[Any] = []

    async def process(self, callback: dingtalk_stream.CallbackMessage) -> tuple[int, Any]:
        self.pressed.append(dingtalk_stream.CardCallbackMessage.from_dict(callback.data))
        return 200, {"cardData": {"cardParamMap": {"status": "done"}}}


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests and websockets honour proxy variables; loopback calls must not go to a proxy.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread() as simulator:
        yield simulator


# -- small clients ------------------------------------------------------------------------


def token(sim: SimulatorThread) -> str:
    response = requests.post(
        f"{sim.base_url}/v1.0/oauth2/accessToken",
        json={"appKey": sim.client_id, "appSecret": sim.client_secret},
        timeout=5,
    )
    assert response.json()["expireIn"] == 7200
    return str(response.json()["accessToken"])


def openapi(
    sim: SimulatorThread, path: str, body: dict[str, Any], access_token: str | None
) -> requests.Response:
    headers = {"x-acs-dingtalk-access-token": access_token} if access_token else {}
    return requests.post(f"{sim.base_url}{path}", json=body, headers=headers, timeout=5)


def group_send(
    sim: SimulatorThread, access_token: str | None, text: str = "hello", **overrides: Any
) -> requests.Response:
    body = {
        "robotCode": sim.robot_code,
        "openConversationId": GROUP,
        "msgKey": "sampleMarkdown",
        "msgParam": json.dumps({"title": "t", "text": text}),
        **overrides,
    }
    return openapi(sim, "/v1.0/robot/groupMessages/send", body, access_token)


def open_ticket(sim: SimulatorThread) -> tuple[str, str]:
    response = requests.post(
        f"{sim.base_url}/v1.0/gateway/connections/open",
        json={
            "clientId": sim.client_id,
            "clientSecret": sim.client_secret,
            "subscriptions": [{"type": "CALLBACK", "topic": BOT_TOPIC}],
        },
        timeout=5,
    )
    response.raise_for_status()
    return response.json()["endpoint"], response.json()["ticket"]


def raw_client(sim: SimulatorThread) -> ClientConnection:
    """A bare websocket client (no SDK, no keepalive) on a fresh ticket."""
    endpoint, ticket = open_ticket(sim)
    return connect(f"{endpoint}?ticket={quote_plus(ticket)}", proxy=None, ping_interval=None)


def receive(client: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(client.recv(timeout=5))
    return frame


def ack(client: ClientConnection, frame: dict[str, Any]) -> None:
    client.send(
        json.dumps(
            {
                "code": 200,
                "headers": {
                    "contentType": "application/json",
                    "messageId": frame["headers"]["messageId"],
                },
                "message": "OK",
                "data": json.dumps({"response": "OK"}),
            }
        )
    )


# -- the Stream gateway, with the real SDK -------------------------------------------------


def test_group_message_reaches_the_sdk_handler_and_its_ack_is_recorded(
    sim: SimulatorThread,
) -> None:
    handler = RecordingHandler()
    with SdkClient(sim, handler):
        assert sim.wait_for(lambda: sim.connection_count == 1)
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
    with SdkClient(sim, RecordingHandler()):
        assert sim.wait_for(lambda: sim.connection_count == 1)
        opaque = sim.ping()
        assert sim.wait_for(lambda: len(sim.acks()) == 1)
    (pong,) = sim.acks()
    assert pong["code"] == 200
    assert pong["message"] == "OK"
    assert json.loads(pong["data"]) == {"opaque": opaque}


def test_sdk_replies_go_to_the_session_webhook_and_mention_the_sender(
    sim: SimulatorThread,
) -> None:
    with SdkClient(sim, RecordingHandler(reply="收到 / noted")):
        assert sim.wait_for(lambda: sim.connection_count == 1)
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
    with sdk:
        assert sim.wait_for(lambda: sim.connection_count == 1)
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
    with SdkClient(sim, handler):
        assert sim.wait_for(lambda: sim.connection_count == 1)
        assert sim.drop_connections() == 1
        assert sim.connection_count == 0
        sim.push_group_message(GROUP, "sent during the outage")
        assert sim.pending == 1  # held by the gateway, not lost
        # SDK 0.24.3 waits 10 s before reconnecting after an abrupt drop (code 1006).
        assert sim.wait_for(lambda: handler.texts() == ["sent during the outage"], timeout=20)
        assert sim.wait_for(lambda: len(sim.acks()) == 1)
    assert sim.connections_opened == 2
    assert sim.pending == 0
    assert len(sim.received("/v1.0/gateway/connections/open")) == 2


def test_sdk_acks_a_disconnect_reconnects_at_once_and_gets_the_frames_of_the_window(
    sim: SimulatorThread,
) -> None:
    handler = RecordingHandler()
    with SdkClient(sim, handler):
        assert sim.wait_for(lambda: sim.connection_count == 1)
        assert sim.send_disconnect(close_after=10.0, wait=False) == 1
        # Nothing more goes to a socket that was told to disconnect: this one waits.
        assert sim.push_group_message(GROUP, "inside the window")
        assert sim.wait_for(lambda: handler.texts() == ["inside the window"], timeout=5)
        assert sim.wait_for(lambda: len(sim.acks()) == 2)  # the disconnect's and the message's
        assert sim.connections_opened == 2
    disconnect_ack = next(a for a in sim.acks() if "reason" in json.loads(a["data"]))
    assert disconnect_ack["code"] == 200


# -- delivery semantics, with a bare websocket client ---------------------------------------


def test_frames_have_dingtalks_shape_with_data_as_a_json_string(sim: SimulatorThread) -> None:
    with raw_client(sim) as client:
        msg_id = sim.push_group_message(GROUP, "图片", msgtype="picture")
        frame = receive(client)
    assert frame["specVersion"] == "1.0"
    assert frame["type"] == "CALLBACK"
    headers = frame["headers"]
    assert headers["topic"] == BOT_TOPIC
    assert headers["contentType"] == "application/json"
    assert headers["time"].isdigit()
    assert headers["appId"]
    assert headers["messageId"]
    assert isinstance(frame["data"], str)
    data = frame_data(frame)
    assert data["msgId"] == msg_id
    assert data["msgtype"] == "picture"
    assert data["content"]["downloadCode"]
    assert "text" not in data
    assert data["sessionWebhookExpiredTime"] - data["createAt"] == 90 * 60 * 1000


def test_a_ticket_opens_one_connection_only(sim: SimulatorThread) -> None:
    endpoint, ticket = open_ticket(sim)
    uri = f"{endpoint}?ticket={quote_plus(ticket)}"
    with connect(uri, proxy=None, ping_interval=None):
        assert sim.wait_for(lambda: sim.connection_count == 1)
    with pytest.raises(InvalidStatus, match="401"):
        connect(uri, proxy=None, ping_interval=None)
    assert sim.connections_opened == 1


def test_offline_frames_are_queued_in_order_or_dropped_as_dingtalk_does(
    sim: SimulatorThread,
) -> None:
    first = sim.push_group_message(GROUP, "one")
    second = sim.push_group_message(GROUP, "two")
    sim.queue_when_offline = False
    third = sim.push_group_message(GROUP, "three")
    assert sim.pending == 2
    assert len(sim.dropped()) == 1
    with raw_client(sim) as client:
        got = [frame_data(receive(client))["msgId"] for _ in range(2)]
        assert got == [first, second]
        with pytest.raises(TimeoutError):
            client.recv(timeout=0.3)
    assert third not in got


def test_unacked_frames_are_redelivered_only_when_asked(sim: SimulatorThread) -> None:
    sim.redeliver_unacked = True
    with raw_client(sim) as client:
        lost = sim.push_group_message(GROUP, "never acked")
        unacked = receive(client)
        sim.push_group_message(GROUP, "acked")
        ack(client, receive(client))
        assert sim.wait_for(lambda: len(sim.acks()) == 1)
    assert sim.wait_for(lambda: sim.connection_count == 0)
    assert sim.wait_for(lambda: sim.pending == 1)
    with raw_client(sim) as client:
        again = receive(client)  # the same frame, as DingTalk does for events
        assert again == unacked
        assert frame_data(again)["msgId"] == lost
        ack(client, again)
        with pytest.raises(TimeoutError):  # the ACKed one is not sent again
            client.recv(timeout=0.3)
        assert sim.wait_for(lambda: len(sim.acks()) == 2)
    assert sim.redelivered() == [unacked["headers"]["messageId"]]
    assert sim.pending == 0


def test_half_open_socket_answers_nothing_and_its_frames_wait_for_a_new_one(
    sim: SimulatorThread,
) -> None:
    with raw_client(sim) as stale:
        assert stale.ping().wait(2)  # answered while healthy
        assert sim.go_half_open() == 1
        assert not stale.ping().wait(0.5)  # the gateway no longer answers
        msg_id = sim.push_group_message(GROUP, "during the half-open spell")
        assert sim.pending == 1
        assert sim.connection_count == 1  # TCP is still up
        with raw_client(sim) as fresh:
            frame = receive(fresh)
            assert frame_data(frame)["msgId"] == msg_id
            ack(stale, frame)  # sent into the void
            ack(fresh, frame)
            assert sim.wait_for(lambda: len(sim.acks()) == 1)
        with pytest.raises(TimeoutError):
            stale.recv(timeout=0.2)
        # Closing needs the gateway's answer, which never comes: give up quickly.
        stale.close_timeout = 0.2


def test_pushes_are_shared_between_several_connections(sim: SimulatorThread) -> None:
    with raw_client(sim) as one, raw_client(sim) as two:
        assert sim.wait_for(lambda: sim.connection_count == 2)
        sim.push_group_message(GROUP, "a")
        sim.push_group_message(GROUP, "b")
        texts = {frame_data(receive(c))["text"]["content"] for c in (one, two)}
    assert texts == {"a", "b"}


# -- OpenAPI and session webhooks -----------------------------------------------------------


def test_group_send_needs_a_valid_token(sim: SimulatorThread) -> None:
    refused = group_send(sim, None)
    assert refused.status_code == 401
    assert set(refused.json()) == {"code", "message", "requestid"}
    accepted = group_send(sim, token(sim))
    assert accepted.status_code == 200
    (sent,) = sim.group_messages(GROUP)
    assert sent["param"] == {"title": "t", "text": "hello"}
    assert accepted.json() == {"processQueryKey": sent["process_query_key"]}
    assert all(
        "x-acs-dingtalk-access-token" not in {h.lower() for h in r.headers} for r in sim.received()
    )


def test_expired_token_is_refused(sim: SimulatorThread) -> None:
    access_token = token(sim)
    sim.expire_tokens()
    assert group_send(sim, access_token).status_code == 401
    assert group_send(sim, token(sim)).status_code == 200


def test_bad_group_sends_are_refused_and_not_recorded(sim: SimulatorThread) -> None:
    access_token = token(sim)
    wrong_robot = group_send(sim, access_token, robotCode="someone-else")
    param_object = group_send(sim, access_token, msgParam={"title": "t", "text": "x"})
    no_text = group_send(sim, access_token, msgParam=json.dumps({"title": "t"}))
    no_group = group_send(sim, access_token, openConversationId="")
    assert [r.status_code for r in (wrong_robot, param_object, no_text, no_group)] == [400] * 4
    assert no_group.json()["code"] == "MissingParameter"
    assert sim.group_messages() == []


def test_injected_server_errors_and_flow_control(sim: SimulatorThread) -> None:
    access_token = token(sim)
    sim.inject_server_errors(1)
    assert group_send(sim, access_token).status_code == 500
    sim.inject_flow_control(1)
    throttled = group_send(sim, access_token)
    assert throttled.status_code == 403
    assert throttled.json()["code"] == FLOW_CONTROL_CODE
    assert throttled.json()["requestid"]
    sim.inject_flow_control(1, status=429)
    too_many = group_send(sim, access_token)
    assert (too_many.status_code, too_many.json()["code"]) == (429, THROTTLING_CODE)
    assert group_send(sim, access_token).status_code == 200
    assert len(sim.group_messages()) == 1
    assert len(sim.received("/v1.0/robot/groupMessages/send")) == 4


def test_slow_answers_when_a_delay_is_set(sim: SimulatorThread) -> None:
    access_token = token(sim)
    sim.set_delay(0.4)
    started = time.monotonic()
    assert group_send(sim, access_token).status_code == 200
    assert time.monotonic() - started >= 0.4
    sim.set_delay(0)
    started = time.monotonic()
    assert group_send(sim, access_token).status_code == 200
    assert time.monotonic() - started < 0.4


def test_recall_works_once_and_only_on_the_bots_own_messages(sim: SimulatorThread) -> None:
    access_token = token(sim)
    key = group_send(sim, access_token).json()["processQueryKey"]
    body = {"robotCode": sim.robot_code, "openConversationId": GROUP}
    path = "/v1.0/robot/groupMessages/recall"
    first = openapi(sim, path, {**body, "processQueryKeys": [key, "unknown"]}, access_token)
    assert first.json()["successResult"] == [key]
    assert set(first.json()["failedResult"]) == {"unknown"}
    again = openapi(sim, path, {**body, "processQueryKeys": [key]}, access_token)
    assert again.json()["successResult"] == []
    assert sim.recalled() == [key]


def test_one_to_one_send_and_recall(sim: SimulatorThread) -> None:
    access_token = token(sim)
    sent = openapi(
        sim,
        "/v1.0/robot/oToMessages/batchSend",
        {
            "robotCode": sim.robot_code,
            "userIds": ["staff42"],
            "msgKey": "sampleText",
            "msgParam": json.dumps({"content": "please call compliance"}),
        },
        access_token,
    )
    assert sent.status_code == 200
    assert sent.json()["flowControlledStaffIdList"] == []
    (message,) = sim.oto_messages()
    assert message["user_ids"] == ["staff42"]
    assert message["param"] == {"content": "please call compliance"}
    key = sent.json()["processQueryKey"]
    recall = openapi(
        sim,
        "/v1.0/robot/otoMessages/batchRecall",
        {"robotCode": sim.robot_code, "processQueryKeys": [key]},
        access_token,
    )
    assert recall.json()["successResult"] == [key]


def test_expired_or_unknown_session_webhook_answers_errcode_300001(sim: SimulatorThread) -> None:
    frame = sim.simulator.group_message_frame(GROUP, "hi")
    webhook = frame_data(frame)["sessionWebhook"]
    reply: dict[str, Any] = {"msgtype": "text", "text": {"content": "x"}}
    assert requests.post(webhook, json=reply, timeout=5).json() == {"errcode": 0, "errmsg": "ok"}
    sim.expire_sessions()
    gone = requests.post(webhook, json=reply, timeout=5)
    unknown = requests.post(
        f"{sim.base_url}/robot/sendBySession?session=nope", json=reply, timeout=5
    )
    assert gone.status_code == unknown.status_code == 200  # oapi style: errors in the body
    assert gone.json()["errcode"] == unknown.json()["errcode"] == 300001
    assert len(sim.session_replies()) == 1


def test_unknown_api_answers_a_dingtalk_shaped_404(sim: SimulatorThread) -> None:
    response = requests.get(f"{sim.base_url}/v1.0/robot/groupMessages/query", timeout=5)
    assert response.status_code == 404
    assert set(response.json()) == {"code", "message", "requestid"}
    assert [r.path for r in sim.received()] == ["/v1.0/robot/groupMessages/query"]


def test_wrong_secret_is_refused_and_never_recorded(sim: SimulatorThread) -> None:
    opened = requests.post(
        f"{sim.base_url}/v1.0/gateway/connections/open",
        json={"clientId": sim.client_id, "clientSecret": "wrong"},
        timeout=5,
    )
    assert opened.status_code == 401
    tokened = requests.post(
        f"{sim.base_url}/v1.0/oauth2/accessToken",
        json={"appKey": sim.client_id, "appSecret": "wrong"},
        timeout=5,
    )
    assert tokened.status_code == 400
    recorded = repr(sim.received())
    assert "wrong" not in recorded
    assert sim.client_secret not in recorded


def test_refused_connections_answer_503(sim: SimulatorThread) -> None:
    sim.refuse_connections(1)
    with pytest.raises(requests.HTTPError, match="503"):
        open_ticket(sim)
    assert open_ticket(sim)[1]


# -- the SDK redirection and the CLI ---------------------------------------------------------


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


def test_cli_prints_the_base_url_and_pushes_typed_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    typed = io.StringIO("hello desk\n/status\n/quit\n")
    assert main(["--port", "0", "--client-secret", "given-secret"], stdin=typed) == 0
    out, err = capsys.readouterr()
    first = out.splitlines()[0]
    assert first.startswith("http://127.0.0.1:")
    assert f"export DINGTALK_OPENAPI_ENDPOINT={first}" in out
    assert "given-secret" not in out + err
    assert "(queued: no client)" in err
    assert "waiting 1" in err
