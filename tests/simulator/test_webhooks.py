"""Session webhooks: oapi-style answers (HTTP 200 + errcode), expiry."""

from __future__ import annotations

from typing import Any

import requests

from bot.simulator import SimulatorThread, frame_data
from tests.simulator.clients import GROUP


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
