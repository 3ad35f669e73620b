"""The Stream gateway: connections/open and tickets, the ``/connect`` websocket, frames and ACKs.

Also what the transport does to frames (queue, drop, redeliver, round-robin) and the socket
faults (abrupt drop, half-open, SYSTEM disconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from bot.simulator import frames
from bot.simulator.faults import Faults, api_error
from bot.simulator.state import SimulatorState

log = logging.getLogger(__name__)

TICKET_LIFETIME = 90.0  # seconds; a ticket opens one connection only (DingTalk behaviour)


@dataclass(eq=False)
class _Connection:
    id: int
    ws: web.WebSocketResponse
    request: web.Request
    frozen: bool = False  # half-open: nothing is read, answered or delivered
    draining: bool = False  # SYSTEM disconnect sent: DingTalk delivers nothing more here
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # its handler has finished

    @property
    def open(self) -> bool:
        """The TCP connection is still up (whether or not it is answering)."""
        transport = self.request.transport
        return not self.ws.closed and transport is not None and not transport.is_closing()

    @property
    def deliverable(self) -> bool:
        return self.open and not self.frozen and not self.draining


class StreamGateway:
    """The Stream side of the simulator, on one event loop (see :class:`Simulator`).

    Delivery: real DingTalk never resends a robot message (fire-and-forget, the ACK is only
    diagnostic). Two switches let a test choose what the transport does:

    - ``queue_when_offline`` (default True): a frame pushed while no socket can take it waits
      and is delivered, in order, on the next connection, so a test can tell "lost by the bot"
      from "lost by the transport". False drops it, as DingTalk does.
    - ``redeliver_unacked`` (default False): a frame delivered to a socket that closes before
      its ACK arrives is queued again (DingTalk's EVENT semantics, duplicates included).
      False leaves it lost, as for robot messages.

    With several sockets open, each frame goes to one of them in turn (DingTalk picks one).
    """

    def __init__(self, state: SimulatorState, faults: Faults) -> None:
        """Record into ``state``; ``faults.refuse_connections`` applies to connections/open."""
        self.state = state
        self.faults = faults
        self.queue_when_offline = True
        self.redeliver_unacked = False
        self.app_id = str(uuid.uuid4())  # the ``appId`` frame header (a UUID at DingTalk)
        self.base_url = ""  # known once listening; the websocket endpoint is derived from it
        self._connections: list[_Connection] = []
        self._outbox: deque[dict[str, Any]] = deque()
        self._in_flight: dict[str, tuple[int, dict[str, Any]]] = {}  # messageId -> (conn, frame)
        self._send_lock: asyncio.Lock | None = None
        self._turn = itertools.count()
        self._connection_ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Serve connections/open and the websocket (call on the loop that will serve)."""
        self._send_lock = asyncio.Lock()
        router.add_post("/v1.0/gateway/connections/open", self._open_connection)
        router.add_get("/connect", self._websocket)

    async def close_all(self) -> None:
        """Close every socket (abort the half-open ones) and end pending closes."""
        for task in list(self._tasks):
            task.cancel()
        for connection in list(self._connections):
            if connection.frozen and connection.request.transport is not None:
                connection.request.transport.abort()  # a half-open peer never answers a close
            else:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.ws.close(), 2.0)

    # -- delivering frames -----------------------------------------------------------------
    async def push(self, frame: dict[str, Any]) -> bool:
        """Deliver a frame to one open socket; True if written, False if queued or dropped.

        Frames already waiting go first, so delivery order is push order.
        """
        async with self._lock():
            self._outbox.append(frame)
            await self._drain_outbox()
            if not any(waiting is frame for waiting in self._outbox):
                return True
            if not self.queue_when_offline:
                self._outbox = deque(f for f in self._outbox if f is not frame)
                with self.state.lock:
                    self.state.dropped.append(_message_id(frame))
            return False

    async def ping(self) -> str:
        """A SYSTEM ping to every answering socket; returns the opaque value they must echo."""
        opaque = uuid.uuid4().hex
        ping = frames.frame(self.app_id, "SYSTEM", frames.PING_TOPIC, {"opaque": opaque})
        for connection in self._connections:
            if connection.deliverable:
                await self._send(connection, ping)
        return opaque

    @property
    def pending(self) -> int:
        """Frames waiting for a socket."""
        return len(self._outbox)

    @property
    def connection_count(self) -> int:
        """Sockets whose TCP connection is up (half-open ones included)."""
        return sum(1 for c in self._connections if c.open)

    def _lock(self) -> asyncio.Lock:
        if self._send_lock is None:
            raise RuntimeError("Simulator.start() has not run")
        return self._send_lock

    async def _drain_outbox(self) -> None:
        """Write waiting frames while a socket takes them (caller holds the send lock)."""
        while self._outbox:
            live = [c for c in self._connections if c.deliverable]
            if not live:
                return
            connection = live[next(self._turn) % len(live)]
            frame = self._outbox[0]
            if not await self._send(connection, frame):
                continue  # that socket just died; _send marked it, try another
            self._outbox.popleft()
            message_id = _message_id(frame)
            self._in_flight[message_id] = (connection.id, frame)
            with self.state.lock:
                self.state.pushed.append(message_id)

    async def _send(self, connection: _Connection, frame: dict[str, Any]) -> bool:
        try:
            await connection.ws.send_str(json.dumps(frame, ensure_ascii=False))
        except (ConnectionError, RuntimeError):
            connection.draining = True  # closing under us: never pick it again
            return False
        return True

    # -- faults on the socket --------------------------------------------------------------
    async def drop_connections(self) -> int:
        """Cut every socket without a close handshake (the client sees code 1006)."""
        dropped = 0
        for connection in list(self._connections):
            transport = connection.request.transport
            if transport is not None and not transport.is_closing():
                transport.abort()
                dropped += 1
        return dropped

    async def go_half_open(self) -> int:
        """Freeze every open socket: TCP stays up, nothing is read, answered or delivered.

        Client pings go unanswered, so the client's own keepalive must notice (websockets
        pings every 20 s; SDK 0.24.3 reconnects after about 60 s). Frames pushed meanwhile are
        queued or dropped per ``queue_when_offline``. New connections work normally.
        """
        frozen = 0
        for connection in self._connections:
            if connection.open and not connection.frozen:
                connection.frozen = True
                frozen += 1
        return frozen

    async def send_disconnect(self, close_after: float = 10.0, *, wait: bool = True) -> int:
        """SYSTEM ``disconnect`` to every answering socket; close them ``close_after`` s later.

        From the disconnect on, nothing more is delivered to those sockets (as reported of
        DingTalk), so frames pushed in the window wait for the next connection or are dropped.
        DingTalk closes about 10 s after the frame; SDK 0.24.3 closes at once on its own.
        ``wait=False`` returns right after the frames are sent.
        """
        targets = [c for c in self._connections if c.deliverable]
        disconnect = frames.frame(
            self.app_id, "SYSTEM", frames.DISCONNECT_TOPIC, {"reason": "simulator maintenance"}
        )
        for connection in targets:
            connection.draining = True
            await self._send(connection, disconnect)
        task = asyncio.get_running_loop().create_task(self._close_later(targets, close_after))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if wait:
            await task
        return len(targets)

    async def _close_later(self, connections: list[_Connection], delay: float) -> None:
        # The client may close first (SDK 0.24.3 does, at once): then there is nothing to do.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(c.ended.wait() for c in connections)), delay)
        for connection in connections:
            if connection.open:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.ws.close(), 5.0)

    # -- handlers --------------------------------------------------------------------------
    async def _open_connection(self, request: web.Request) -> web.Response:
        body = await self.state.receive(request)
        if self.faults.refuse_connections > 0:
            self.faults.refuse_connections -= 1
            return api_error(503, "ServiceUnavailable", "simulated gateway outage")
        if not isinstance(body, dict) or not self.state.app_ok(
            body.get("clientId"), body.get("clientSecret")
        ):
            return api_error(401, "InvalidAuthentication", "clientId or clientSecret is wrong")
        ticket = str(uuid.uuid4())
        with self.state.lock:
            self.state.tickets[ticket] = time.time() + TICKET_LIFETIME
            subscriptions = body.get("subscriptions")
            self.state.subscriptions = (
                list(subscriptions) if isinstance(subscriptions, list) else []
            )
        # DingTalk answers a wss:// endpoint; the SDK uses whatever it is given, ws:// included.
        endpoint = self.base_url.replace("http://", "ws://", 1) + "/connect"
        return web.json_response({"endpoint": endpoint, "ticket": ticket})

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        self.state.record(request, None)
        with self.state.lock:
            expires = self.state.tickets.pop(request.query.get("ticket", ""), 0.0)
        if expires < time.time():
            return api_error(401, "InvalidTicket", "ticket unknown, used or expired")  # sim's own
        # No autoping/autoclose: the simulator answers pings and closes itself, so that a
        # half-open socket can stop doing both.
        ws = web.WebSocketResponse(autoping=False, autoclose=False)
        await ws.prepare(request)
        connection = _Connection(next(self._connection_ids), ws, request)
        self._connections.append(connection)
        with self.state.lock:
            self.state.connections_opened += 1
        async with self._lock():
            await self._drain_outbox()
        try:
            await self._serve(connection)
        finally:
            await self._forget(connection)
        return ws

    async def _serve(self, connection: _Connection) -> None:
        ws = connection.ws
        while True:
            message = await ws.receive()
            if message.type is WSMsgType.TEXT:
                if not connection.frozen:
                    self._record_ack(message.data)
            elif message.type is WSMsgType.PING:
                if not connection.frozen:
                    await ws.pong(message.data)
            elif message.type is WSMsgType.CLOSE:
                if connection.frozen:
                    await _until_gone(connection)  # a half-open server never answers a close
                else:
                    await ws.close()
                return
            elif message.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return

    async def _forget(self, connection: _Connection) -> None:
        """A socket ended: frames it never ACKed are lost, or queued again if so configured."""
        connection.ended.set()
        if connection in self._connections:
            self._connections.remove(connection)
        unacked = [mid for mid, (cid, _) in self._in_flight.items() if cid == connection.id]
        frames_back = [self._in_flight.pop(mid)[1] for mid in unacked]
        if not self.redeliver_unacked or not frames_back:
            return
        async with self._lock():
            self._outbox.extendleft(reversed(frames_back))
            with self.state.lock:
                self.state.redelivered.extend(unacked)
            await self._drain_outbox()

    def _record_ack(self, raw: str) -> None:
        try:
            ack = json.loads(raw)
        except json.JSONDecodeError:
            log.warning("simulator: the client sent a frame that is not JSON")
            return
        if not isinstance(ack, dict):
            log.warning("simulator: the client sent a frame that is not a JSON object")
            return
        headers = ack.get("headers")
        message_id = headers.get("messageId") if isinstance(headers, Mapping) else None
        self._in_flight.pop(str(message_id), None)
        with self.state.lock:
            self.state.acks.append(ack)


def _message_id(frame: Mapping[str, Any]) -> str:
    headers = frame.get("headers")
    return str(headers.get("messageId", "")) if isinstance(headers, Mapping) else ""


async def _until_gone(connection: _Connection) -> None:
    """Wait until the peer drops the TCP connection (it gives up on an unanswered close)."""
    # aiohttp signals nothing once a close has been received and left unanswered: poll.
    while (transport := connection.request.transport) is not None and not transport.is_closing():  # noqa: ASYNC110
        await asyncio.sleep(0.05)
