"""Small clients of the simulator for its tests: raw HTTP and websocket calls, SDK handlers."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus

import dingtalk_stream
import requests
from websockets.sync.client import ClientConnection, connect

from bot.simulator import BOT_TOPIC, SimulatorThread
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


@contextlib.contextmanager
def connected(sdk: SdkClient, sim: SimulatorThread) -> Iterator[SdkClient]:
    """Run the SDK client until the block ends, once the simulator sees its socket."""
    with sdk:
        assert sim.wait_for(lambda: sim.connection_count == 1)
        yield sdk


# -- OpenAPI ------------------------------------------------------------------------------


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


# -- the Stream gateway, without the SDK --------------------------------------------------


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
