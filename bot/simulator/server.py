"""The local DingTalk: Stream gateway, OpenAPI and session webhooks on 127.0.0.1, with faults.

What is modelled, and how faithfully, is listed in the :class:`Simulator` docstring. Error
codes marked "simulator's own" below are not DingTalk's: DingTalk does not document the code
it returns for that mistake, so the simulator picks a readable one in the same shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from bot.simulator import frames

log = logging.getLogger(__name__)

TICKET_LIFETIME = 90.0  # seconds; a ticket opens one connection only (DingTalk behaviour)
TOKEN_LIFETIME = 7200  # seconds, the ``expireIn`` DingTalk answers
# api.dingtalk.com answers per-app/per-API QPS throttling with HTTP 403 and this code (seen in
# third-party DingTalk clients; the variant ...QpsLimitForAppkeyAndApi also exists).
FLOW_CONTROL_CODE = "Forbidden.AccessDenied.QpsLimitForApi"
# For ``throttle_status=429``: not a code DingTalk is known to send; it lets a test check that a
# client also treats a bare HTTP 429 as flow control.
THROTTLING_CODE = "Throttling"
# What oapi.dingtalk.com answers (HTTP 200) for an expired or unknown sessionWebhook.
SESSION_GONE = {"errcode": 300001, "errmsg": "session 不存在"}
# msgParam fields each msgKey needs (DingTalk's robot message templates); other
# ``sample*`` keys are accepted without a field check.
MSG_PARAMS = {"sampleText": ("content",), "sampleMarkdown": ("title", "text")}
# Never recorded: credentials in headers, query strings and bodies.
SECRET_HEADERS = frozenset(
    {"x-acs-dingtalk-access-token", "authorization", "proxy-authorization", "cookie"}
)
SECRET_QUERY = frozenset({"ticket", "session", "access_token", "sign"})
SECRET_BODY = frozenset({"clientSecret", "appSecret"})


@dataclass
class Faults:
    """HTTP faults the simulator injects on purpose; tests change them at run time.

    ``fail_next``, ``throttle_next`` and ``delay`` apply to the robot/card OpenAPI and to session
    webhooks, not to the token or gateway endpoints (``refuse_connections`` is the gateway's).
    Socket faults are actions instead: :meth:`Simulator.drop_connections`,
    :meth:`Simulator.go_half_open`, :meth:`Simulator.send_disconnect`.
    """

    fail_next: int = 0  # answer the next N calls with HTTP 500 (DingTalk-shaped body)
    throttle_next: int = 0  # answer the next N calls with flow control
    throttle_status: int = 403  # 403 + FLOW_CONTROL_CODE as DingTalk does; or 429 + THROTTLING
    delay: float = 0.0  # seconds to wait before answering each call
    refuse_connections: int = 0  # answer the next N connections/open with HTTP 503


@dataclass(frozen=True)
class Recorded:
    """One HTTP request as received; tokens, tickets, sessions and secrets are left out."""

    method: str
    path: str
    body: Any
    at: float
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)


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


@dataclass
class SimulatorState:
    """Everything recorded; guarded by ``lock`` because readers live in other threads."""

    apps: dict[str, str]
    robot_code: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (time.time())
    tickets: dict[str, float] = field(default_factory=dict)
    sessions: dict[str, tuple[str, float]] = field(default_factory=dict)  # -> (cid, expiry)
    requests: list[Recorded] = field(default_factory=list)
    acks: list[dict[str, Any]] = field(default_factory=list)
    group_messages: list[dict[str, Any]] = field(default_factory=list)
    session_replies: list[dict[str, Any]] = field(default_factory=list)
    oto_messages: list[dict[str, Any]] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)
    recalled: list[str] = field(default_factory=list)
    pushed: list[str] = field(default_factory=list)  # messageIds written to a socket, in order
    dropped: list[str] = field(default_factory=list)  # messageIds discarded for lack of a socket
    redelivered: list[str] = field(default_factory=list)  # messageIds re-queued after a close
    subscriptions: list[dict[str, Any]] = field(default_factory=list)  # from the last open
    connections_opened: int = 0


class Simulator:
    """A local DingTalk for one app, on one event loop. Use :class:`SimulatorThread` with the SDK.

    Modelled: connections/open with single-use 90 s tickets; the ``/connect`` websocket with
    real frames, ACK recording, SYSTEM ping and disconnect; the access token; groupMessages
    send/recall, oToMessages batchSend/batchRecall, robot interactive cards; session webhooks
    (oapi style: HTTP 200 with ``errcode``); a DingTalk-shaped 404 for anything else.

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

    def __init__(
        self,
        *,
        client_id: str = "dingsimulatorapp",
        client_secret: str | None = None,
        robot_code: str | None = None,
        queue_when_offline: bool = True,
        redeliver_unacked: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """Configure one app; the secret is random unless given, robotCode = client id."""
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.app_id = str(uuid.uuid4())  # the ``appId`` frame header (a UUID at DingTalk)
        self.state = SimulatorState({client_id: self.client_secret}, robot_code or client_id)
        self.faults = Faults()
        self.queue_when_offline = queue_when_offline
        self.redeliver_unacked = redeliver_unacked
        self.base_url = ""
        self._host = host
        self._port = port
        self._connections: list[_Connection] = []
        self._outbox: deque[dict[str, Any]] = deque()
        self._in_flight: dict[str, tuple[int, dict[str, Any]]] = {}  # messageId -> (conn, frame)
        self._send_lock: asyncio.Lock | None = None
        self._turn = itertools.count()
        self._connection_ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None

    @property
    def robot_code(self) -> str:
        """The robotCode OpenAPI calls must carry."""
        return self.state.robot_code

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> str:
        """Listen and return the base URL (the value for DINGTALK_OPENAPI_ENDPOINT)."""
        self._send_lock = asyncio.Lock()
        app = web.Application()
        route = app.router
        route.add_post("/v1.0/gateway/connections/open", self._open_connection)
        route.add_get("/connect", self._websocket)
        route.add_post("/v1.0/oauth2/accessToken", self._access_token)
        route.add_post("/robot/sendBySession", self._session_webhook)
        route.add_post("/v1.0/robot/groupMessages/send", self._group_send)
        route.add_post("/v1.0/robot/groupMessages/recall", self._group_recall)
        route.add_post("/v1.0/robot/oToMessages/batchSend", self._oto_send)
        route.add_post("/v1.0/robot/otoMessages/batchRecall", self._oto_recall)
        route.add_post("/v1.0/im/v1.0/robot/interactiveCards/send", self._card_send)
        route.add_put("/v1.0/im/robots/interactiveCards", self._card_update)
        route.add_route("*", "/{tail:.*}", self._not_found)
        # A short shutdown: open websockets are closed by stop() before the runner goes.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        await web.SockSite(self._runner, sock).start()
        port = sock.getsockname()[1]
        self.base_url = f"http://{self._host}:{port}"
        return self.base_url

    async def stop(self) -> None:
        """Close every socket and stop listening."""
        for task in list(self._tasks):
            task.cancel()
        for connection in list(self._connections):
            if connection.frozen and connection.request.transport is not None:
                connection.request.transport.abort()  # a half-open peer never answers a close
            else:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.ws.close(), 2.0)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- building frames -------------------------------------------------------------------
    def group_message_frame(
        self,
        conversation_id: str,
        text: str,
        *,
        sender_nick: str = "Alice Chan",
        sender_staff_id: str = "staff001",
        conversation_title: str = "HK Desk - Equities",
        at_bot: bool = True,
        msg_id: str | None = None,
        msgtype: str = "text",
        conversation_type: str = "2",
    ) -> dict[str, Any]:
        """A robot-message CALLBACK frame as DingTalk sends it, with a live sessionWebhook.

        ``at_bot=False`` builds a group message that does not @-mention the robot: DingTalk
        does not deliver those to an ordinary app robot, so such a frame only tests how a
        client copes if one arrives. ``conversation_type="1"`` builds a one-to-one message.
        Safe to call from any thread.
        """
        created = frames.now_ms()
        session = secrets.token_hex(16)
        with self.state.lock:
            expiry = time.time() + frames.SESSION_LIFETIME
            self.state.sessions[session] = (conversation_id, expiry)
        data = frames.robot_message_data(
            conversation_id=conversation_id,
            text=text,
            robot_code=self.state.robot_code,
            session_webhook=f"{self.base_url}/robot/sendBySession?session={session}",
            msg_id=msg_id or f"msg{uuid.uuid4().hex}",
            sender_nick=sender_nick,
            sender_staff_id=sender_staff_id,
            conversation_title=conversation_title,
            at_bot=at_bot,
            msgtype=msgtype,
            conversation_type=conversation_type,
            created_ms=created,
        )
        return frames.frame(self.app_id, "CALLBACK", frames.BOT_TOPIC, data)

    def card_callback_frame(
        self,
        out_track_id: str,
        user_id: str,
        params: dict[str, Any],
        action_ids: list[str] | None = None,
    ) -> dict[str, Any]:
        """A card-callback CALLBACK frame (a user pressed a button on an interactive card)."""
        data = frames.card_callback_data(out_track_id, user_id, params, action_ids)
        return frames.frame(self.app_id, "CALLBACK", frames.CARD_TOPIC, data)

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

    # -- state changes ---------------------------------------------------------------------
    def expire_tokens(self) -> None:
        """Every access token issued so far stops working (clients must fetch a new one)."""
        with self.state.lock:
            self.state.tokens.clear()

    def expire_sessions(self) -> None:
        """Every sessionWebhook handed out so far answers ``errcode 300001``."""
        with self.state.lock:
            self.state.sessions.clear()

    # -- handlers: Stream ------------------------------------------------------------------
    async def _open_connection(self, request: web.Request) -> web.Response:
        body = await _json(request)
        self._record(request, body)
        if self.faults.refuse_connections > 0:
            self.faults.refuse_connections -= 1
            return _error(503, "ServiceUnavailable", "simulated gateway outage")
        if not isinstance(body, dict) or not self._app_ok(
            body.get("clientId"), body.get("clientSecret")
        ):
            return _error(401, "InvalidAuthentication", "clientId or clientSecret is wrong")
        ticket = str(uuid.uuid4())
        with self.state.lock:
            self.state.tickets[ticket] = time.time() + TICKET_LIFETIME
            subscriptions = body.get("subscriptions")
            self.state.subscriptions = (
                list(subscriptions) if isinstance(subscriptions, list) else []
            )
        endpoint = self.base_url.replace("http://", "ws://", 1) + "/connect"
        return web.json_response({"endpoint": endpoint, "ticket": ticket})

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        self._record(request, None)
        with self.state.lock:
            expires = self.state.tickets.pop(request.query.get("ticket", ""), 0.0)
        if expires < time.time():
            return _error(401, "InvalidTicket", "ticket unknown, used or expired")  # sim's own
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
        message_id = headers.get("messageId") if isinstance(headers, dict) else None
        self._in_flight.pop(str(message_id), None)
        with self.state.lock:
            self.state.acks.append(ack)

    # -- handlers: OpenAPI (api.dingtalk.com style: HTTP status + {code, message, requestid}) --
    async def _access_token(self, request: web.Request) -> web.Response:
        body = await _json(request)
        self._record(request, body)
        if not isinstance(body, dict) or not self._app_ok(
            body.get("appKey"), body.get("appSecret")
        ):
            return _error(400, "invalidClientIdOrSecret", "appKey or appSecret is wrong")
        token = secrets.token_hex(16)
        with self.state.lock:
            self.state.tokens[token] = time.time() + TOKEN_LIFETIME
        return web.json_response({"accessToken": token, "expireIn": TOKEN_LIFETIME})

    async def _openapi(self, request: web.Request) -> tuple[dict[str, Any], web.Response | None]:
        """Record, inject faults, check the token and the body; (body, error or None)."""
        raw = await _json(request)
        self._record(request, raw)
        failure = await self._fault()
        if failure is not None:
            return {}, failure
        token = request.headers.get("x-acs-dingtalk-access-token", "")
        with self.state.lock:
            valid = self.state.tokens.get(token, 0.0) > time.time()
        if not valid:
            return {}, _error(401, "InvalidAuthentication", "不合法的access_token")
        if not isinstance(raw, dict):
            return {}, _error(400, "InvalidParameter", "body must be a JSON object")
        if "robotCode" in raw and raw["robotCode"] != self.state.robot_code:
            # simulator's own code: robotCode must be this app's (the AppKey for app robots)
            return raw, _error(400, "InvalidParameter.RobotCode", "robotCode is not this app's")
        return raw, None

    async def _fault(self) -> web.Response | None:
        faults = self.faults
        if faults.delay > 0:
            await asyncio.sleep(faults.delay)
        if faults.fail_next > 0:
            faults.fail_next -= 1
            return _error(500, "InternalError", "simulated server error")
        if faults.throttle_next > 0:
            faults.throttle_next -= 1
            if faults.throttle_status == 429:
                return _error(429, THROTTLING_CODE, "simulated throttling")
            return _error(403, FLOW_CONTROL_CODE, "请求过于频繁 (simulated flow control)")
        return None

    async def _group_send(self, request: web.Request) -> web.Response:
        body, failure = await self._openapi(request)
        if failure is not None:
            return failure
        problem = _missing(body, "robotCode", "openConversationId", "msgKey", "msgParam")
        param, param_problem = _msg_param(body)
        if problem or param_problem:
            return problem or param_problem or _error(400, "InvalidParameter", "")
        key = secrets.token_urlsafe(24)
        with self.state.lock:
            self.state.group_messages.append(
                {
                    "conversation_id": body["openConversationId"],
                    "robot_code": body["robotCode"],
                    "msg_key": body["msgKey"],
                    "param": param,
                    "process_query_key": key,
                    "received_at": time.time(),
                }
            )
        return web.json_response({"processQueryKey": key})

    async def _group_recall(self, request: web.Request) -> web.Response:
        body, failure = await self._openapi(request)
        if failure is not None:
            return failure
        problem = _missing(body, "robotCode", "openConversationId", "processQueryKeys")
        if problem:
            return problem
        keys = [str(k) for k in body["processQueryKeys"]]
        with self.state.lock:
            known = {
                m["process_query_key"]
                for m in self.state.group_messages
                if m["conversation_id"] == body["openConversationId"]
            }
            done = [k for k in keys if k in known and k not in self.state.recalled]
            self.state.recalled.extend(done)
        failed = {
            k: "processQueryKey not found or already recalled" for k in keys if k not in done
        }
        return web.json_response({"successResult": done, "failedResult": failed})

    async def _oto_send(self, request: web.Request) -> web.Response:
        body, failure = await self._openapi(request)
        if failure is not None:
            return failure
        problem = _missing(body, "robotCode", "userIds", "msgKey", "msgParam")
        param, param_problem = _msg_param(body)
        if problem or param_problem:
            return problem or param_problem or _error(400, "InvalidParameter", "")
        key = secrets.token_urlsafe(24)
        with self.state.lock:
            self.state.oto_messages.append(
                {
                    "user_ids": [str(u) for u in body["userIds"]],
                    "msg_key": body["msgKey"],
                    "param": param,
                    "process_query_key": key,
                    "received_at": time.time(),
                }
            )
        return web.json_response(
            {
                "processQueryKey": key,
                "invalidStaffIdList": [],
                "flowControlledStaffIdList": [],
                "filteredStaffIdList": [],
            }
        )

    async def _oto_recall(self, request: web.Request) -> web.Response:
        body, failure = await self._openapi(request)
        if failure is not None:
            return failure
        problem = _missing(body, "robotCode", "processQueryKeys")
        if problem:
            return problem
        keys = [str(k) for k in body["processQueryKeys"]]
        with self.state.lock:
            known = {m["process_query_key"] for m in self.state.oto_messages}
            done = [k for k in keys if k in known and k not in self.state.recalled]
            self.state.recalled.extend(done)
        failed = {
            k: "processQueryKey not found or already recalled" for k in keys if k not in done
        }
        return web.json_response({"successResult": done, "failedResult": failed})

    async def _card_send(self, request: web.Request) -> web.Response:
        body, failure = await self._openapi(request)
        if failure is not None:
            return failure
        problem = _missing(body, "cardTemplateId", "robotCode", "cardData", "cardBizId")
        if problem:
            return problem
        if not body.get("openConversationId") and not body.get("singleChatReceiver"):
            return _error(400, "MissingParameter", "openConversationId or singleChatReceiver")
        with self.state.lock:
            self.state.cards.append({**body, "received_at": time.time()})
        return web.json_response({"processQueryKey": secrets.token_urlsafe(24)})

    async def _card_update(self, request: web.Request) -> web.Response:
        body, failure = await self._openapi(request)
        if failure is not None:
            return failure
        problem = _missing(body, "cardBizId", "cardData")
        if problem:
            return problem
        with self.state.lock:
            known = any(c.get("cardBizId") == body["cardBizId"] for c in self.state.cards)
            if known:
                self.state.cards.append({**body, "update": True, "received_at": time.time()})
        if not known:
            return _error(400, "InvalidParameter.CardBizId", "no card with this cardBizId")
        return web.json_response({"success": True})

    async def _not_found(self, request: web.Request) -> web.Response:
        self._record(request, await _json(request))
        # The API gateway's answer for a path/method it does not know.
        return _error(
            404,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        )

    # -- handlers: session webhook (oapi.dingtalk.com style: HTTP 200 + errcode) --------------
    async def _session_webhook(self, request: web.Request) -> web.Response:
        body = await _json(request)
        self._record(request, body)
        failure = await self._fault()
        if failure is not None:
            return failure
        with self.state.lock:
            session = self.state.sessions.get(request.query.get("session", ""))
        if session is None or session[1] < time.time():
            return web.json_response(SESSION_GONE)
        if not isinstance(body, dict) or body.get("msgtype") not in (
            "text",
            "markdown",
            "actionCard",
            "link",
            "feedCard",
        ):
            return web.json_response({"errcode": 40035, "errmsg": "缺少参数 msgtype"})
        with self.state.lock:
            self.state.session_replies.append(
                {"conversation_id": session[0], **body, "received_at": time.time()}
            )
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    # -- helpers ---------------------------------------------------------------------------
    def _app_ok(self, client_id: object, secret: object) -> bool:
        expected = self.state.apps.get(str(client_id))
        return (
            expected is not None
            and isinstance(secret, str)
            and secrets.compare_digest(expected, secret)
        )

    def _record(self, request: web.Request, body: Any) -> None:
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k not in SECRET_BODY}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in SECRET_HEADERS}
        query = {k: ("***" if k in SECRET_QUERY else v) for k, v in request.query.items()}
        recorded = Recorded(request.method, request.path, body, time.time(), headers, query)
        with self.state.lock:
            self.state.requests.append(recorded)


def _message_id(frame: Mapping[str, Any]) -> str:
    headers = frame.get("headers")
    return str(headers.get("messageId", "")) if isinstance(headers, Mapping) else ""


async def _until_gone(connection: _Connection) -> None:
    """Wait until the peer drops the TCP connection (it gives up on an unanswered close)."""
    # aiohttp signals nothing once a close has been received and left unanswered: poll.
    while (transport := connection.request.transport) is not None and not transport.is_closing():  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def _json(request: web.Request) -> Any:
    if not request.can_read_body:
        return None
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _missing(body: Mapping[str, Any], *names: str) -> web.Response | None:
    """400 naming the absent parameters (code: DingTalk's MissingParameter shape)."""
    absent = [name for name in names if body.get(name) in (None, "", [])]
    if absent:
        return _error(400, "MissingParameter", f"missing {', '.join(absent)}")
    return None


def _msg_param(body: Mapping[str, Any]) -> tuple[dict[str, Any], web.Response | None]:
    """Decode ``msgParam`` (a JSON *string*, not an object) and check it fits ``msgKey``."""
    key = str(body.get("msgKey", ""))
    if not key.startswith("sample"):
        return {}, _error(400, "InvalidParameter.MsgKey", f"unknown msgKey {key!r}")  # sim's own
    raw = body.get("msgParam")
    try:
        param = json.loads(raw) if isinstance(raw, str) else None
    except json.JSONDecodeError:
        param = None
    if not isinstance(param, dict):
        return {}, _error(400, "InvalidParameter.MsgParam", "msgParam must be a JSON string")
    absent = [name for name in MSG_PARAMS.get(key, ()) if not param.get(name)]
    if absent:
        return {}, _error(400, "InvalidParameter.MsgParam", f"{key} needs {', '.join(absent)}")
    return param, None


def _error(status: int, code: str, message: str) -> web.Response:
    """The api.dingtalk.com error shape."""
    return web.json_response(
        {"code": code, "message": message, "requestid": str(uuid.uuid4()).upper()}, status=status
    )
