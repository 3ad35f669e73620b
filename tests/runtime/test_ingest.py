"""HTTP ingest: bearer auth, JSON batches and JSON lines, validation, back-pressure."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.domain import Message
from bot.runtime.ingest import Ingest, RecordError, message_from_record, parse_body
from tests.support.fakes import new_supervisor

TOKEN = "ingest-token-0123456789abcdef"  # noqa: S105


class Harness:
    def __init__(self) -> None:
        self.accepted: list[Message] = []
        self.refusal: str | None = None
        self.fail_after: int | None = None

    async def accept(self, message: Message) -> str:
        if self.fail_after is not None and len(self.accepted) >= self.fail_after:
            raise OSError("disk full")
        self.accepted.append(message)
        return "local"


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Harness]]:
    harness = Harness()
    app = web.Application()
    Ingest(
        token=TOKEN,
        accept=harness.accept,
        refuse=lambda: harness.refusal,
        supervisor=new_supervisor(),
    ).add_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/v1/messages", harness
    await runner.cleanup()


async def post(
    url: str, body: Any, *, token: str | None = TOKEN, content_type: str = "application/json"
) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=data, headers=headers) as response,
    ):
        return response.status, await response.json()


async def test_batch_is_queued_and_bad_records_reported_by_index(
    server: tuple[str, Harness],
) -> None:
    url, harness = server
    status, body = await post(
        url,
        {
            "messages": [
                {
                    "id": "a1",
                    "text": "hello",
                    "conversation_id": "cid1",
                    "sent_at": "2025-01-02T03:04:05+08:00",
                },
                {"id": 42, "text": "numeric ids are fine"},
                {"text": "no id"},
                {"id": "a4", "text": 5},
            ]
        },
    )
    assert status == 202
    assert body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == [2, 3]
    assert [m.id for m in harness.accepted] == ["a1", "42"]
    assert all(m.source == "ingest" for m in harness.accepted)


async def test_json_lines_in_the_screen_command_format_are_accepted(
    server: tuple[str, Harness],
) -> None:
    url, _ = server
    lines = b'{"id": "l1", "text": "one"}\n\n{"id": "l2", "text": "two", "labels": ["x"]}\n'
    status, body = await post(url, lines, content_type="application/x-ndjson")
    assert status == 202
    assert body["accepted"] == 2


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789abcdef"])
async def test_requests_without_the_right_bearer_token_are_refused(
    server: tuple[str, Harness], token: str | None
) -> None:
    url, harness = server
    status, _ = await post(url, [{"id": "x", "text": "y"}], token=token)
    assert status == 401
    assert harness.accepted == []


async def test_full_queue_or_shutdown_answers_503_so_the_client_retries(
    server: tuple[str, Harness],
) -> None:
    url, harness = server
    harness.refusal = "queue full"
    status, body = await post(url, [{"id": "x", "text": "y"}])
    assert status == 503
    assert body["error"] == "queue full"


async def test_a_queue_failure_mid_batch_says_where_to_resume(server: tuple[str, Harness]) -> None:
    url, harness = server
    harness.fail_after = 1
    status, body = await post(url, [{"id": "x", "text": "y"}, {"id": "z", "text": "w"}])
    assert status == 500
    assert body == {"accepted": 1, "rejected": [], "failed_at": 1}


async def test_malformed_body_is_a_400(server: tuple[str, Harness]) -> None:
    url, _ = server
    status, body = await post(url, b"{not json")
    assert status == 400
    assert "invalid JSON" in body["error"]


async def test_ingest_is_disabled_without_a_token() -> None:
    app = web.Application()

    async def accept(message: Message) -> str:
        return "local"

    Ingest(token=None, accept=accept, refuse=lambda: None, supervisor=new_supervisor()).add_routes(
        app
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        status, body = await post(f"http://127.0.0.1:{runner.addresses[0][1]}/v1/messages", [])
    finally:
        await runner.cleanup()
    assert status == 404
    assert "BOT_INGEST_TOKEN" in body["error"]


def test_records_never_carry_a_session_webhook_and_errors_never_quote_text() -> None:
    message = message_from_record({"id": "x", "text": "t", "session_webhook": "http://evil"})
    assert message.session_webhook == ""
    with pytest.raises(RecordError) as caught:
        message_from_record({"id": "x", "text": "A123456(3)", "sent_at": "yesterday"})
    assert "A123456" not in str(caught.value)
    with pytest.raises(RecordError):
        parse_body(b'{"messages": 5}', "application/json")
