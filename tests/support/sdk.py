"""Runs the real dingtalk-stream SDK client in its own thread and loop, as the bot must."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import ModuleType
from typing import Any

import dingtalk_stream
from dingtalk_stream import stream

from bot.simulator import SimulatorThread, point_sdk_at


class CappedSleep:
    """Stands in for ``asyncio`` inside ``dingtalk_stream.stream``: ``sleep`` waits at most ``cap``.

    SDK 0.24.3's ``start()`` sleeps 10 s after a dropped socket (3 s after other errors) before
    it reconnects, and its keepalive 60 s between pings. Every other name is the real asyncio.
    ``slept`` keeps the delays the SDK asked for, so a test can tell which path it took.
    """

    def __init__(self, real: ModuleType, cap: float) -> None:
        self._real = real
        self._cap = cap
        self.slept: list[float] = []

    async def sleep(self, delay: float, result: Any = None) -> Any:
        self.slept.append(delay)
        return await self._real.sleep(min(delay, self._cap), result)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class SdkClient:
    """``with SdkClient(sim, handler):`` connects the SDK to the simulator; stops it on exit.

    ``max_sleep`` caps the SDK's own sleeps (reconnect delays, keepalive) while this client
    runs, by swapping the ``asyncio`` name of ``dingtalk_stream.stream`` for a
    :class:`CappedSleep` on entry and back on exit; the asyncio module itself is untouched.
    Only one such client may run at a time.
    """

    def __init__(
        self,
        sim: SimulatorThread,
        handler: Any,
        topic: str = dingtalk_stream.ChatbotMessage.TOPIC,
        *,
        max_sleep: float | None = None,
    ) -> None:
        point_sdk_at(sim.base_url)
        credential = dingtalk_stream.Credential(sim.client_id, sim.client_secret)
        self.client = dingtalk_stream.DingTalkStreamClient(credential)
        self.client.register_callback_handler(topic, handler)
        self.sleeps = None if max_sleep is None else CappedSleep(asyncio, max_sleep)
        self._module_asyncio = stream.asyncio
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[Any] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._task = self._loop.create_task(self.client.start())
        with contextlib.suppress(asyncio.CancelledError, Exception):
            self._loop.run_until_complete(self._task)
        # The SDK leaves keepalive tasks behind; end them so the loop closes cleanly.
        leftovers = asyncio.all_tasks(self._loop)
        for task in leftovers:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            self._loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        self._loop.close()

    def __enter__(self) -> SdkClient:
        if self.sleeps is not None:
            self._module_asyncio = stream.asyncio
            stream.asyncio = self.sleeps  # the SDK module's global name only
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            # SDK 0.24.3 swallows the first CancelledError and reconnects: cancel until it ends.
            for _ in range(50):
                if self._task is not None and not self._task.done():
                    self._loop.call_soon_threadsafe(self._task.cancel)
                self._thread.join(timeout=0.2)
                if not self._thread.is_alive():
                    break
        finally:
            if self.sleeps is not None:
                stream.asyncio = self._module_asyncio
