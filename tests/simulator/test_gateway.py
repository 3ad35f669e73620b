"""The Stream gateway with a bare websocket client: frames, tickets, queueing, socket faults."""

from __future__ import annotations

from urllib.parse import quote_plus

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from bot.simulator import BOT_TOPIC, SimulatorThread, frame_data
from tests.simulator.clients import GROUP, ack, open_ticket, raw_client, receive


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
