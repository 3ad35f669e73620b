"""The per-destination outbox: the first notice at once, a burst as one summary, failures to all."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.runtime.notifier import Outbox


async def test_outbox_sends_the_first_at_once_and_aggregates_a_burst() -> None:
    batches: list[list[int]] = []
    times: list[float] = []

    async def send(items: list[int]) -> None:
        batches.append(items)
        times.append(time.monotonic())

    outbox: Outbox[int] = Outbox(send, interval=0.3)
    started = time.monotonic()
    first = await outbox.submit(0)
    sizes = await asyncio.gather(*(outbox.submit(n) for n in range(1, 20)))
    assert first == 1
    assert batches == [[0], list(range(1, 20))]  # twenty messages, two chat messages
    assert set(sizes) == {19}
    assert times[0] - started < 0.1
    assert times[1] - times[0] >= 0.29


async def test_outbox_flush_sends_held_items_now() -> None:
    batches: list[list[int]] = []

    async def send(items: list[int]) -> None:
        batches.append(items)

    outbox: Outbox[int] = Outbox(send, interval=60)
    await outbox.submit(1)
    held = asyncio.ensure_future(outbox.submit(2))
    await asyncio.sleep(0.01)
    assert batches == [[1]]
    await outbox.flush()
    assert await held == 1
    assert batches == [[1], [2]]


async def test_outbox_reports_a_failed_send_to_every_waiting_caller() -> None:
    async def send(items: list[int]) -> None:
        raise ConnectionError("down")

    outbox: Outbox[int] = Outbox(send, interval=0.01)
    with pytest.raises(ConnectionError):
        await outbox.submit(1)
