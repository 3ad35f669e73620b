"""Fixtures of the simulator tests: a fresh simulator each, and no proxy for loopback calls."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.simulator import SimulatorThread


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests and websockets honour proxy variables; loopback calls must not go to a proxy.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread() as simulator:
        yield simulator
