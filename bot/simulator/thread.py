"""Runs the simulator on its own event loop in its own thread, with thread-safe controls.

It must not share the SDK's loop: dingtalk-stream 0.24.3 makes blocking ``requests`` calls
(connections/open, reply_text) inside its loop, which deadlocks against a server on that loop.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, overload

from bot.simulator.faults import Faults
from bot.simulator.frames import frame_data
from bot.simulator.server import Simulator
from bot.simulator.state import Recorded

T = TypeVar("T")


class _Switch:
    """A delivery switch of the :class:`Simulator`: read at once, set on the simulator's loop."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc
        self.name = ""

    def __set_name__(self, owner: type[SimulatorThread], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, thread: None, owner: type[SimulatorThread]) -> _Switch: ...
    @overload
    def __get__(self, thread: SimulatorThread, owner: type[SimulatorThread]) -> bool: ...
    def __get__(
        self, thread: SimulatorThread | None, owner: type[SimulatorThread]
    ) -> bool | _Switch:
        if thread is None:  # looked up on the class (help(), docs)
            return self
        return bool(getattr(thread.simulator, self.name))

    def __set__(self, thread: SimulatorThread, value: bool) -> None:
        thread.call(_call(lambda: setattr(thread.simulator, self.name, value)))


class SimulatorThread:
    """``with SimulatorThread() as sim:`` starts a local DingTalk; every method is thread-safe.

    Methods block the calling thread until the simulator's loop has done the work; from
    async code call them through ``asyncio.to_thread`` so the caller's loop keeps running.
    """

    def __init__(self, **options: Any) -> None:
        """Options go to :class:`Simulator` (client_id, client_secret, queue_when_offline...)."""
        self.simulator = Simulator(**options)
        # Identity: the app's key and secret, the robotCode OpenAPI calls must carry (the
        # client id unless given), and once started the value for DINGTALK_OPENAPI_ENDPOINT.
        self.client_id = self.simulator.client_id
        self.client_secret = self.simulator.client_secret
        self.robot_code = self.simulator.robot_code
        self.base_url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="dingtalk-simulator", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        leftovers = asyncio.all_tasks(self._loop)
        for task in leftovers:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    def __enter__(self) -> SimulatorThread:
        """Start the server thread and wait until it listens."""
        self._thread.start()
        try:
            self.base_url = self.call(self.simulator.start())
        except BaseException:
            self._halt()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server and the thread."""
        try:
            self.call(self.simulator.stop())
        finally:
            self._halt()

    def _halt(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run a coroutine on the simulator's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def _on_loop(self, function: Callable[[], T]) -> T:
        """Run a plain function on the simulator's loop (where its state lives)."""
        return self.call(_call(function))

    # -- pushing -----------------------------------------------------------------------------
    def push_group_message(self, conversation_id: str, text: str, **options: Any) -> str:
        """Push an @-bot group message; returns its msgId.

        Options: sender_nick, sender_staff_id, conversation_title, at_bot, msg_id, msgtype
        (text, richText, picture, file, audio, video), conversation_type ("2" group, "1" 1:1).
        """
        frame = self.simulator.group_message_frame(conversation_id, text, **options)
        self.call(self.simulator.push(frame))
        return str(frame_data(frame)["msgId"])

    def push_frame(self, frame: dict[str, Any]) -> bool:
        """Push any frame; False when it was queued (or dropped) for lack of a socket."""
        return self.call(self.simulator.push(frame))

    def push_card_callback(
        self,
        out_track_id: str,
        user_id: str,
        params: dict[str, Any],
        action_ids: list[str] | None = None,
    ) -> str:
        """Push a card-button callback (topic /v1.0/card/instances/callback); returns messageId."""
        frame = self.simulator.card_callback_frame(out_track_id, user_id, params, action_ids)
        self.call(self.simulator.push(frame))
        return str(frame["headers"]["messageId"])

    def ping(self) -> str:
        """Push a SYSTEM ping to every answering socket; returns the opaque value to echo."""
        return self.call(self.simulator.ping())

    # -- faults ------------------------------------------------------------------------------
    @property
    def faults(self) -> Faults:
        """The fault switches; prefer the methods below, which change them on the loop."""
        return self.simulator.faults

    def inject_server_errors(self, count: int) -> None:
        """The next ``count`` OpenAPI/webhook calls answer HTTP 500."""
        self._on_loop(lambda: setattr(self.faults, "fail_next", count))

    def inject_flow_control(self, count: int, status: int = 403) -> None:
        """The next ``count`` OpenAPI/webhook calls are throttled (403 as DingTalk, or 429)."""

        def apply() -> None:
            self.faults.throttle_next = count
            self.faults.throttle_status = status

        self._on_loop(apply)

    def set_delay(self, seconds: float) -> None:
        """Every OpenAPI/webhook call waits ``seconds`` before answering (0 to stop)."""
        self._on_loop(lambda: setattr(self.faults, "delay", seconds))

    def refuse_connections(self, count: int) -> None:
        """The next ``count`` connections/open calls answer HTTP 503."""
        self._on_loop(lambda: setattr(self.faults, "refuse_connections", count))

    def drop_connections(self) -> int:
        """Abrupt TCP drop of every client socket (code 1006); returns how many."""
        return self.call(self.simulator.drop_connections())

    def go_half_open(self) -> int:
        """Freeze every open socket (TCP up, nothing read or answered); returns how many."""
        return self.call(self.simulator.go_half_open())

    def send_disconnect(self, close_after: float = 10.0, *, wait: bool = True) -> int:
        """SYSTEM disconnect, then close any socket still open ``close_after`` s later.

        With ``wait`` (the default) this returns once every such socket has closed.
        """
        return self.call(
            self.simulator.send_disconnect(close_after, wait=wait), timeout=close_after + 10
        )

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working."""
        self._on_loop(self.simulator.expire_tokens)

    def expire_sessions(self) -> None:
        """Every sessionWebhook handed out so far answers errcode 300001."""
        self._on_loop(self.simulator.expire_sessions)

    queue_when_offline = _Switch(
        "True: frames pushed with no socket wait for one. False: dropped, as DingTalk does."
    )
    redeliver_unacked = _Switch(
        "True: frames whose socket closed before their ACK are delivered again."
    )

    # -- reading what happened ---------------------------------------------------------------
    def _read(self, getter: Callable[[], list[T]]) -> list[T]:
        with self.simulator.state.lock:
            return copy.deepcopy(getter())

    def received(self, path: str | None = None) -> list[Recorded]:
        """Every HTTP request (and websocket upgrade) received, optionally for one path."""
        recorded = self._read(lambda: self.simulator.state.requests)
        return [r for r in recorded if path is None or r.path == path]

    def acks(self) -> list[dict[str, Any]]:
        """Frames the client sent back (ACKs), as sent: ``data`` is still a JSON string."""
        return self._read(lambda: self.simulator.state.acks)

    def ack_for(self, message_id: str) -> dict[str, Any] | None:
        """The first ACK for the frame with this ``messageId`` header, if any."""
        for ack in self.acks():
            if ack.get("headers", {}).get("messageId") == message_id:
                return ack
        return None

    def group_messages(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        """Messages sent with groupMessages/send (msgParam decoded into ``param``)."""
        return _in(conversation_id, self._read(lambda: self.simulator.state.group_messages))

    def session_replies(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        """Bodies posted to session webhooks, with the ``conversation_id`` they went to."""
        return _in(conversation_id, self._read(lambda: self.simulator.state.session_replies))

    def oto_messages(self) -> list[dict[str, Any]]:
        """Messages sent with oToMessages/batchSend."""
        return self._read(lambda: self.simulator.state.oto_messages)

    def cards(self) -> list[dict[str, Any]]:
        """Interactive cards sent (and updates, marked ``update``), request bodies as sent."""
        return self._read(lambda: self.simulator.state.cards)

    def recalled(self) -> list[str]:
        """The processQueryKeys recalled successfully."""
        return self._read(lambda: self.simulator.state.recalled)

    def pushed(self) -> list[str]:
        """The messageIds of frames written to a socket, in delivery order."""
        return self._read(lambda: self.simulator.state.pushed)

    def dropped(self) -> list[str]:
        """The messageIds dropped for lack of a socket (queue_when_offline=False)."""
        return self._read(lambda: self.simulator.state.dropped)

    def redelivered(self) -> list[str]:
        """The messageIds queued again because their socket closed before the ACK."""
        return self._read(lambda: self.simulator.state.redelivered)

    def subscriptions(self) -> list[dict[str, Any]]:
        """The subscriptions the client sent with its last connections/open."""
        return self._read(lambda: self.simulator.state.subscriptions)

    @property
    def pending(self) -> int:
        """Frames waiting for a socket."""
        return self._on_loop(lambda: self.simulator.pending)

    @property
    def connection_count(self) -> int:
        """Sockets whose TCP connection is up now (half-open ones included)."""
        return self._on_loop(lambda: self.simulator.connection_count)

    @property
    def connections(self) -> int:
        """Same as :attr:`connection_count`."""
        return self.connection_count

    @property
    def connections_opened(self) -> int:
        """Sockets opened since start (reconnects included)."""
        with self.simulator.state.lock:
            return self.simulator.state.connections_opened

    @staticmethod
    def wait_for(
        predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02
    ) -> bool:
        """Poll ``predicate`` until it is true or ``timeout`` passes; returns its last value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        return predicate()


def _in(conversation_id: str | None, sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages of one conversation (all of them for None)."""
    return [m for m in sent if conversation_id is None or m["conversation_id"] == conversation_id]


async def _call(function: Callable[[], T]) -> T:
    return function()
