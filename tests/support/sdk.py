"""Runs the real dingtalk-stream SDK client in its own thread and loop, as the bot must."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType
from typing import Any

import dingtalk_stream

from bot.simulator import SimulatorThread, point_sdk_at


class SdkClient:
    """``with SdkClient(sim, handler):`` connects the SDK to the simulator; stops it on exit."""

    def __init__(
        self, sim: SimulatorThread, handler: Any, topic: str = dingtalk_stream.ChatbotMessage.TOPIC
    ) -> None:
        point_sdk_at(sim.base_url)
        credential = dingtalk_stream.Credential(sim.client_id, sim.client_secret)
        self.client = dingtalk_stream.DingTalkStreamClient(credential)
        self.client.register_callback_handler(topic, handler)
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
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # SDK 0.24.3 swallows the first CancelledError and reconnects: cancel until it ends.
        for _ in range(50):
            if self._task is not None and not self._task.done():
                self._loop.call_soon_threadsafe(self._task.cancel)
            self._thread.join(timeout=0.2)
            if not self._thread.is_alive():
                break
