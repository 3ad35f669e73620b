"""Helpers and fixtures for the bot runtime tests: the simulator, Redis prefixes, a bot on it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.audit import MemoryAuditTrail
from bot.infra.redis_link import connect_redis
from bot.runtime.lifecycle import Bot
from bot.runtime.settings import REPO, Settings
from bot.simulator import SimulatorThread

REDIS_URL = "redis://127.0.0.1:6379/15"
DESK = "cidTestDesk=="
COMPLIANCE = "cidTestCompliance=="
RISKY = "客戶身份證號碼 K765432(4)，麻煩幫手開戶"  # an HKID with a valid check digit
HKID = "K765432(4)"
CLEAN = "Morning all, lunch at 12:30?"
ADVICE = "I would buy 0700.HK here, strong buy"


async def eventually(predicate: Callable[[], bool], limit: float = 10.0) -> bool:
    """Poll ``predicate`` until it is true (returns True) or ``limit`` seconds pass (False)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread() as simulator:
        yield simulator


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A unique key prefix on the shared test Redis; every key under it is deleted after."""
    prefix = f"bt-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = connect_redis(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def bot_settings(sim: SimulatorThread, data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a bot against ``sim``: fast intervals so tests do not wait."""
    base = Settings(
        client_id=sim.client_id,
        client_secret=sim.client_secret,
        openapi_endpoint=sim.base_url,
        compliance_conversation_id=COMPLIANCE,
        rules_dir=REPO / "rules",
        data_dir=data_dir,
        replica_id=f"test-{uuid.uuid4().hex[:6]}",
        http_port=0,
        warn_interval_seconds=0.2,
        escalation_interval_seconds=0.2,
        rules_poll_seconds=3600,
        rules_ner=False,
        drain_seconds=5,
        outbound_attempts=4,
        backoff_base_seconds=0.02,
        backoff_max_seconds=0.2,
        outbound_timeout_seconds=3,
        reconnect_max_seconds=1,
    )
    return dataclasses.replace(base, **overrides)


@contextlib.asynccontextmanager
async def running_bot(
    settings: Settings, archive: MemoryAuditTrail | None = None
) -> AsyncIterator[Bot]:
    """A started bot (stream connected), stopped on exit."""
    bot = Bot(settings, archive=archive if archive is not None else MemoryAuditTrail())
    await bot.start()
    try:
        if bot.intake is not None:
            assert await bot.intake.wait_connected(10), "stream did not connect"
        yield bot
    finally:
        await bot.stop()


def push(sim: SimulatorThread, text: str, **options: Any) -> str:
    """Push an @-bot group message to the desk group; returns its msgId."""
    options.setdefault("conversation_title", "HK Desk - Equities")
    return sim.push_group_message(DESK, text, **options)


async def apush(sim: SimulatorThread, text: str, **options: Any) -> str:
    """:func:`push` from async code without blocking the bot's event loop."""
    return await asyncio.to_thread(push, sim, text, **options)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A private redis-server on a free port (AOF on, as production should run it)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.binary = shutil.which("redis-server") or "redis-server"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        subprocess.run(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.directory),
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.directory / "redis.pid"),
            ],
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """SHUTDOWN (the AOF is already fsynced on every write)."""
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock,
        ):
            sock.sendall(b"SHUTDOWN NOSAVE\r\n")
            with contextlib.suppress(OSError):
                sock.recv(16)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                return
            time.sleep(0.05)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.directory.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def redis_client(url: str = REDIS_URL) -> Redis:
    return connect_redis(url)
