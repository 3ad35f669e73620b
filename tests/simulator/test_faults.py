"""Injected faults (500s, flow control, delays, refused connections) and what is recorded."""

from __future__ import annotations

import time

import pytest
import requests

from bot.simulator import FLOW_CONTROL_CODE, THROTTLING_CODE, SimulatorThread
from tests.simulator.clients import group_send, open_ticket, token


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


def test_refused_connections_answer_503(sim: SimulatorThread) -> None:
    sim.refuse_connections(1)
    with pytest.raises(requests.HTTPError, match="503"):
        open_ticket(sim)
    assert open_ticket(sim)[1]


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
