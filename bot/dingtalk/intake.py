"""The only module importing dingtalk_stream: frames to Messages, a fast ACK, a supervised client.

What the pinned SDK (0.24.3) gets wrong and what this module does about it:

- It ACKs only after ``process()`` returns and sends no ACK when it raises, so ``process``
  catches everything and only hands the message to the durable queue (milliseconds).
- ``open_connection`` calls blocking ``requests`` inside the event loop; it runs in a thread.
- Its ``start()`` loop sleeps 10 s after an abrupt drop, reconnects in a tight loop after
  a clean close, swallows ``CancelledError`` and has no ``stop()``; :class:`StreamClient`
  replaces that loop (backoff with jitter, a stop flag, a reconnect counter) and keeps the
  SDK's frame parsing, routing and ACK.
- ``websockets.exceptions`` is imported lazily by the SDK; imported here up front so an
  early error does not become an ``AttributeError``.
- Every SYSTEM ping is logged as "unknown", some paths log whole frames: bot.infra.ops scrubs them.

The SDK runs on the bot's own event loop: with the blocking call moved to a thread and every
outbound call made by bot.dingtalk.openapi, nothing in it blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote_plus

import dingtalk_stream
import dingtalk_stream.card_replier
import dingtalk_stream.chatbot
import dingtalk_stream.stream
import dingtalk_stream.utils
import websockets
import websockets.exceptions  # the SDK's lazy-import bug: load it before the first connect
from dingtalk_stream import AckMessage, CallbackHandler, ChatbotMessage

from bot.dingtalk.frames import message_from_callback
from bot.domain import Message
from bot.infra.backoff import Backoff
from bot.infra.health import Health
from bot.infra.metrics import Metrics
from bot.infra.supervisor import Supervisor

log = logging.getLogger(__name__)

ROBOT_TOPIC: str = ChatbotMessage.TOPIC  # /v1.0/im/bot/messages/get
Accept = Callable[[Message], Awaitable[None]]


def point_sdk_at(endpoint: str) -> None:
    """Make the SDK use ``endpoint`` for connections/open (and everything else it calls).

    The SDK copies ``DINGTALK_OPENAPI_ENDPOINT`` by value into several modules at import
    and reads the open-connection URL from the class, so each copy is replaced.
    """
    base = endpoint.rstrip("/")
    for module in (
        dingtalk_stream.utils,
        dingtalk_stream.stream,
        dingtalk_stream.chatbot,
        dingtalk_stream.card_replier,
    ):
        module.DINGTALK_OPENAPI_ENDPOINT = base
    dingtalk_stream.DingTalkStreamClient.OPEN_CONNECTION_API = (
        base + "/v1.0/gateway/connections/open"
    )


class ComplianceHandler(CallbackHandler):  # type: ignore[misc]
    """Robot-message callbacks: parse, hand to the durable queue, return 200.

    Returning is what makes the SDK send the ACK. Robot messages are never resent by
    DingTalk, so the ACK is diagnostic: a message we fail to queue is logged and counted
    here, loudly, because no one else will ever see it again.
    """

    def __init__(self, accept: Accept, supervisor: Supervisor, timeout: float) -> None:
        """``accept`` stores the message durably (it spills to disk rather than fail)."""
        super().__init__()
        self.accept = accept
        self.supervisor = supervisor
        self.metrics = supervisor.metrics
        self.timeout = timeout

    async def process(self, callback: Any) -> tuple[int, str]:
        """Never raises: an exception here would mean no ACK at all."""
        started = time.perf_counter()
        try:
            data = callback.data if isinstance(callback.data, dict) else {}
            message = message_from_callback(data, str(callback.headers.message_id or ""))
            if message is None:
                return AckMessage.STATUS_OK, "ignored"
            await asyncio.wait_for(self.accept(message), self.timeout)
        except Exception as error:  # noqa: BLE001  (raising here would mean no ACK at all)
            self.supervisor.report("intake", error)
            log.error(
                "frame could not be queued; message lost to the bot (DingTalk will not resend)"
            )
            return AckMessage.STATUS_SYSTEM_EXCEPTION, "not queued"
        self.metrics.ack_seconds.observe(time.perf_counter() - started)
        return AckMessage.STATUS_OK, "OK"


class StreamClient(dingtalk_stream.DingTalkStreamClient):  # type: ignore[misc]
    """The SDK client with a supervised connection loop (see the module docstring)."""

    websocket: Any  # the SDK's attribute: the open connection, or None

    def __init__(self, credential: Any, *, supervisor: Supervisor, reconnect_max: float) -> None:
        """Same as the SDK's, plus what the loop reports to."""
        super().__init__(credential, logger=logging.getLogger("dingtalk_stream.client"))
        self.supervisor = supervisor
        self.metrics: Metrics = supervisor.metrics
        self.health: Health = supervisor.health
        self.backoff = Backoff(base=0.5, cap=reconnect_max)
        self.stopping = False
        self.connections = 0
        self._frames: set[asyncio.Task[None]] = set()

    def get_host_ip(self) -> str:
        """The SDK UDP-connects to 8.8.8.8 to learn its address; ``localIp`` is diagnostic."""
        return ""

    async def start(self) -> None:
        """Connect, read frames, reconnect with backoff, until :meth:`stop`."""
        self.pre_start()
        failures = 0
        while not self.stopping:
            opened_at = time.monotonic()
            try:
                # connections/open uses blocking requests: keep it off the event loop.
                connection = await asyncio.to_thread(self.open_connection)
                if not connection or "endpoint" not in connection or "ticket" not in connection:
                    raise ConnectionError("connections/open gave no endpoint")
                uri = f"{connection['endpoint']}?ticket={quote_plus(connection['ticket'])}"
                async with websockets.connect(uri, max_size=2**22) as websocket:
                    self.websocket = websocket
                    self._connected()
                    async for raw in websocket:
                        self._dispatch(raw)
                # A clean close (or a server "disconnect"): reconnect promptly, not in a loop.
                failures = 0 if time.monotonic() - opened_at > 30 else failures + 1
            except asyncio.CancelledError:
                raise
            except (OSError, websockets.exceptions.WebSocketException, ConnectionError) as error:
                failures += 1
                self.supervisor.report("stream", error, expected=True)
            except Exception as error:  # noqa: BLE001  (funnelled; the loop reconnects)
                failures += 1
                self.supervisor.report("stream", error)
            finally:
                self._disconnected()
            if self._stop_requested():
                break
            await asyncio.sleep(self._delay(failures))

    def _stop_requested(self) -> bool:
        # A call, not the attribute: stop() sets it while this loop awaits, which a type
        # checker narrowing ``self.stopping`` inside ``while not self.stopping`` cannot see.
        return self.stopping

    def _delay(self, failures: int) -> float:
        return 0.05 if failures <= 0 else self.backoff.delay(failures - 1)

    def _dispatch(self, raw: str | bytes) -> None:
        try:
            frame = json.loads(raw)
        except ValueError:
            self.supervisor.note("frame", "undecodable frame")
            return
        # The SDK's routing: handler -> ACK over the current websocket. Tracked, so
        # stop() can wait for ACKs in flight instead of dropping them.
        task = asyncio.get_running_loop().create_task(self.background_task(frame))
        self._frames.add(task)
        task.add_done_callback(self._frames.discard)

    def _connected(self) -> None:
        self.connections += 1
        if self.connections > 1:
            self.metrics.reconnects.inc()
        self.metrics.stream_connected.set(1)
        self.health.stream_connected = True
        log.info("stream connected", extra={"count": self.connections})

    def _disconnected(self) -> None:
        self.metrics.stream_connected.set(0)
        self.health.stream_connected = False
        self.websocket = None

    async def stop(self, grace: float = 5.0) -> None:
        """Stop reading: close the socket, let in-flight frames finish their ACKs."""
        self.stopping = True
        if self._frames:
            await asyncio.wait(list(self._frames), timeout=grace)
        websocket = self.websocket
        if websocket is not None:
            with contextlib.suppress(Exception):
                await websocket.close()


class StreamIntake:
    """Owns the SDK client task: start, connected state, stop."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        endpoint: str,
        accept: Accept,
        supervisor: Supervisor,
        accept_timeout: float,
        reconnect_max: float,
    ) -> None:
        """Point the SDK at ``endpoint`` and register the robot-message handler."""
        point_sdk_at(endpoint)
        credential = dingtalk_stream.Credential(client_id, client_secret)
        self.client = StreamClient(credential, supervisor=supervisor, reconnect_max=reconnect_max)
        self.client.register_callback_handler(
            ROBOT_TOPIC, ComplianceHandler(accept, supervisor, accept_timeout)
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run the client in the background."""
        self._task = asyncio.get_running_loop().create_task(self.client.start(), name="stream")

    @property
    def connections(self) -> int:
        """How many times the websocket has been opened."""
        return int(self.client.connections)

    async def wait_connected(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait until the websocket is open (tests, demo)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.client.websocket is not None:
                return True
            await asyncio.sleep(0.02)
        return False

    async def stop(self) -> None:
        """Stop intake: frames in flight are ACKed, then the socket closes."""
        await self.client.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
