"""Runs the simulator on its own event loop in its own thread, with thread-safe controls.

It must not share the SDK's loop: dingtalk-stream 0.24.3 makes blocking `requests` calls
(connections/open, reply_text) inside its loop, which deadlocks against a server on that loop.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

from bot.simulator.server import Faults, Simulator

T = TypeVar("T")


class SimulatorThread:
    """``with SimulatorThread() as sim:`` starts a local DingTalk; every method is thread-safe."""

    def __init__(self, **options: Any) -> None:
        """Options go to :class:`Simulator` (client_id, client_secret, queue_when_offline...)."""
        self.simulator = Simulator(**options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="dingtalk-simulator", daemon=True
        )

    def __enter__(self) -> SimulatorThread:
        """Start the server thread and wait until it listens."""
        self._thread.start()
        self.call(self.simulator.start())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server and the thread."""
        self.call(self.simulator.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run a coroutine on the simulator's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    # -- identity ----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The value for DINGTALK_OPENAPI_ENDPOINT."""
        return self.simulator.base_url

    @property
    def client_id(self) -> str:
        """The simulated app's key."""
        return self.simulator.client_id

    @property
    def client_secret(self) -> str:
        """The simulated app's secret."""
        return self.simulator.client_secret

    @property
    def faults(self) -> Faults:
        """Fault switches; plain attribute writes are atomic enough for tests."""
        return self.simulator.faults

    # -- pushing -----------------------------------------------------------------------------
    def push_group_message(self, conversation_id: str, text: str, **options: Any) -> str:
        """Push an @-bot group message; returns its msgId."""
        frame = self.simulator.group_message_frame(conversation_id, text, **options)
        self.call(self.simulator.push(frame))
        return str(frame_data(frame)["msgId"])

    def push_frame(self, frame: dict[str, Any]) -> bool:
        """Push any frame; False when it was queued (or dropped) for lack of a client."""
        return self.call(self.simulator.push(frame))

    def push_card_callback(self, out_track_id: str, user_id: str, params: dict[str, Any]) -> None:
        """Push a card-button callback."""
        self.call(
            self.simulator.push(self.simulator.card_callback_frame(out_track_id, user_id, params))
        )

    def ping(self) -> None:
        """Push a SYSTEM ping."""
        self.call(self.simulator.ping())

    def drop_connections(self) -> None:
        """Abrupt TCP drop of every client socket."""
        self.call(self.simulator.drop_connections())

    def send_disconnect(self, close_after: float = 0.5) -> None:
        """SYSTEM disconnect, then close."""
        self.call(self.simulator.send_disconnect(close_after), timeout=close_after + 10)

    # -- reading what happened ---------------------------------------------------------------
    def _read(self, getter: Callable[[], list[Any]]) -> list[Any]:
        with self.simulator.state.lock:
            return copy.deepcopy(getter())

    def group_messages(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        """Messages sent with groupMessages/send (msgParam decoded into ``param``)."""
        sent = self._read(lambda: self.simulator.state.group_messages)
        return [
            m for m in sent if conversation_id is None or m["conversation_id"] == conversation_id
        ]

    def session_replies(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        """Bodies posted to session webhooks."""
        sent = self._read(lambda: self.simulator.state.session_replies)
        return [
            m for m in sent if conversation_id is None or m["conversation_id"] == conversation_id
        ]

    def acks(self) -> list[dict[str, Any]]:
        """Frames the client sent back (ACKs)."""
        return self._read(lambda: self.simulator.state.acks)

    def received(self) -> list[Any]:
        """Every HTTP request received (method, path, body, time)."""
        return self._read(lambda: self.simulator.state.requests)

    @property
    def connection_count(self) -> int:
        """Sockets open now."""
        return self.call(_value(lambda: self.simulator.connection_count))

    @property
    def connections_opened(self) -> int:
        """Sockets opened since start (reconnects included)."""
        with self.simulator.state.lock:
            return self.simulator.state.connections_opened

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02
    ) -> bool:
        """Poll ``predicate`` until true or ``timeout``; returns its last value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        return predicate()


async def _value(getter: Callable[[], T]) -> T:
    return getter()


def frame_data(frame: dict[str, Any]) -> dict[str, Any]:
    """The decoded ``data`` of a frame (DingTalk sends it as a JSON string)."""
    import json  # noqa: PLC0415

    data: dict[str, Any] = json.loads(frame["data"])
    return data
