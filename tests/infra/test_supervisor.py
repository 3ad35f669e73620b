"""The one error funnel: counted by stage, logged once without message text, fatal when essential."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.infra.logs import JsonFormatter
from tests.support.fakes import new_supervisor

PERSONAL_TEXT = "客戶身份證 A123456(3)"


async def test_a_reported_error_is_counted_by_stage_and_logged_without_its_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervisor = new_supervisor()
    caplog.set_level(logging.INFO)
    supervisor.report("screen", ValueError(PERSONAL_TEXT), message_id="m1")
    supervisor.report("screen", ValueError(PERSONAL_TEXT), message_id="m2")
    assert supervisor.metrics.sample("bot_errors_total", stage="screen") == 2
    lines = [JsonFormatter().format(r) for r in caplog.records]
    assert len(lines) == 2  # once per failure, not once per layer it crossed
    assert all('"stage": "screen"' in line and '"error": "ValueError"' in line for line in lines)
    assert all("A123456" not in line for line in lines)


async def test_an_expected_outage_is_logged_as_a_warning_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervisor = new_supervisor()
    caplog.set_level(logging.INFO)
    supervisor.report("redis", ConnectionError("refused"))
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert not record.exc_info


async def test_a_dying_background_task_is_reported_once() -> None:
    supervisor = new_supervisor()

    async def breaks() -> None:
        raise RuntimeError("boom")

    task = supervisor.spawn(breaks(), "rules-watch")
    await asyncio.gather(task, return_exceptions=True)
    assert supervisor.metrics.sample("bot_errors_total", stage="rules-watch") == 1
    assert supervisor.health.fatal == ""  # not essential: the bot keeps working


async def test_an_essential_task_that_dies_or_stops_fails_readiness() -> None:
    supervisor = new_supervisor()
    health = supervisor.health
    health.rules_version, health.consumer_alive = "v", True

    async def breaks() -> None:
        raise RuntimeError("boom")

    await asyncio.gather(supervisor.spawn(breaks(), "consumer", essential=True))
    assert health.fatal == "consumer: RuntimeError"
    assert "essential task died (consumer: RuntimeError)" in health.problems()

    again = new_supervisor()

    async def returns() -> None:
        return None

    await asyncio.gather(again.spawn(returns(), "consumer", essential=True))
    assert again.health.fatal == "consumer: stopped"


async def test_a_task_ending_during_shutdown_is_not_fatal() -> None:
    supervisor = new_supervisor()
    supervisor.health.stopping = True

    async def returns() -> None:
        return None

    await asyncio.gather(supervisor.spawn(returns(), "consumer", essential=True))
    assert supervisor.health.fatal == ""


async def test_close_cancels_every_task() -> None:
    supervisor = new_supervisor()
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(3600)

    supervisor.spawn(forever(), "depth")
    await started.wait()
    assert supervisor.running == ["depth"]
    await supervisor.close()
    assert supervisor.running == []
    assert supervisor.metrics.total("bot_errors_total") == 0  # a cancel is not an error
