"""The DingTalk HTTP client against the simulator: token cache, retries, flow control, webhooks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp
import pytest

from bot.dingtalk.openapi import DingTalkError, OutboundClient, RetryPolicy
from bot.infra.backoff import Backoff
from bot.infra.metrics import Metrics
from bot.runtime.settings import ConfigError
from bot.simulator import SimulatorThread, frame_data
from tests.support.bot import DESK


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


def client_for(
    sim: SimulatorThread, session: aiohttp.ClientSession, *, secret: str | None = None
) -> OutboundClient:
    return OutboundClient(
        session,
        endpoint=sim.base_url,
        client_id=sim.client_id,
        client_secret=secret or sim.client_secret,
        robot_code=sim.client_id,
        metrics=Metrics(),
        policy=RetryPolicy(attempts=4, timeout=2, backoff=Backoff(base=0.01, cap=0.05)),
        webhook_hosts={urlsplit(sim.base_url).netloc},
    )


def token_requests(sim: SimulatorThread) -> int:
    return sum(1 for r in sim.received() if r.path == "/v1.0/oauth2/accessToken")


async def test_group_send_posts_markdown_and_caches_the_token(
    sim: SimulatorThread, session: aiohttp.ClientSession
) -> None:
    client = client_for(sim, session)
    key = await client.send_group_markdown(DESK, "title", "**hello** 你好")
    await client.send_group_markdown(DESK, "title", "again")
    assert key
    sent = sim.group_messages(DESK)
    assert [m["param"]["text"] for m in sent] == ["**hello** 你好", "again"]
    assert sent[0]["msg_key"] == "sampleMarkdown"
    assert token_requests(sim) == 1


async def test_server_errors_and_flow_control_are_retried_with_backoff(
    sim: SimulatorThread, session: aiohttp.ClientSession
) -> None:
    client = client_for(sim, session)
    await client.access_token()
    sim.faults.fail_next = 1
    sim.faults.throttle_next = 2
    await client.send_group_markdown(DESK, "t", "after three failures")
    assert len(sim.group_messages(DESK)) == 1
    assert (
        client.metrics.sample(
            "bot_outbound_requests_total", endpoint="groupMessages/send", result="retry"
        )
        == 3
    )


async def test_gives_up_after_the_last_attempt(
    sim: SimulatorThread, session: aiohttp.ClientSession
) -> None:
    client = client_for(sim, session)
    await client.access_token()
    sim.faults.fail_next = 10
    with pytest.raises(DingTalkError) as caught:
        await client.send_group_markdown(DESK, "t", "never")
    assert caught.value.status == 500
    assert (
        client.metrics.sample(
            "bot_outbound_requests_total", endpoint="groupMessages/send", result="failed"
        )
        == 1
    )


async def test_an_invalid_token_is_refreshed_once(
    sim: SimulatorThread, session: aiohttp.ClientSession
) -> None:
    client = client_for(sim, session)
    await client.access_token()
    client._token = "stale"  # noqa: S105  (revoked by DingTalk)
    await client.send_group_markdown(DESK, "t", "works")
    assert len(sim.group_messages(DESK)) == 1
    assert token_requests(sim) == 2


async def test_wrong_credentials_stop_start_up_naming_the_settings(
    sim: SimulatorThread, session: aiohttp.ClientSession
) -> None:
    client = client_for(sim, session, secret="wrong-secret")  # noqa: S106
    with pytest.raises(ConfigError) as caught:
        await client.check_credentials()
    assert "DINGTALK_CLIENT_SECRET" in caught.value.setting
    assert "wrong-secret" not in str(caught.value)


async def test_unreachable_endpoint_names_the_endpoint_setting(
    session: aiohttp.ClientSession,
) -> None:
    client = OutboundClient(
        session,
        endpoint="http://127.0.0.1:9",
        client_id="x",
        client_secret="y",  # noqa: S106
        robot_code="x",
        metrics=Metrics(),
        policy=RetryPolicy(attempts=1, timeout=1),
    )
    with pytest.raises(ConfigError) as caught:
        await client.check_credentials()
    assert caught.value.setting == "DINGTALK_OPENAPI_ENDPOINT"


async def test_session_webhook_reply_mentions_the_sender(
    sim: SimulatorThread, session: aiohttp.ClientSession
) -> None:
    frame = sim.simulator.group_message_frame(DESK, "hi")
    webhook = frame_data(frame)["sessionWebhook"]
    client = client_for(sim, session)
    sim.faults.fail_next = 1  # one 500 first: retried
    await client.reply_webhook(webhook, "t", "@staff001 notice", ["staff001"])
    (reply,) = sim.session_replies(DESK)
    assert reply["markdown"] == {"title": "t", "text": "@staff001 notice"}
    assert reply["at"]["atUserIds"] == ["staff001"]


async def test_expired_session_webhook_is_a_permanent_error(
    sim: SimulatorThread, session: aiohttp.ClientSession
) -> None:
    client = client_for(sim, session)
    with pytest.raises(DingTalkError) as caught:
        await client.reply_webhook(
            f"{sim.base_url}/robot/sendBySession?session=gone", "t", "x", []
        )
    assert caught.value.code == "errcode 300001"
    assert not caught.value.retryable


async def test_session_webhook_on_another_host_is_refused(
    sim: SimulatorThread, session: aiohttp.ClientSession
) -> None:
    client = client_for(sim, session)
    with pytest.raises(DingTalkError, match="host not allowed"):
        await client.reply_webhook("http://169.254.169.254/latest/meta-data", "t", "x", [])
    assert sim.received() == []
