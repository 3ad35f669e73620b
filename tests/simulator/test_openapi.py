"""The simulated OpenAPI: the access token, group and 1:1 sends, recall, DingTalk's 404."""

from __future__ import annotations

import json

import requests

from bot.simulator import SimulatorThread
from tests.simulator.clients import GROUP, group_send, openapi, token


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


def test_unknown_api_answers_a_dingtalk_shaped_404(sim: SimulatorThread) -> None:
    response = requests.get(f"{sim.base_url}/v1.0/robot/groupMessages/query", timeout=5)
    assert response.status_code == 404
    assert set(response.json()) == {"code", "message", "requestid"}
    assert [r.path for r in sim.received()] == ["/v1.0/robot/groupMessages/query"]
