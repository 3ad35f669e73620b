"""A local DingTalk: Stream gateway, OpenAPI and session webhooks on 127.0.0.1, with faults."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)

BOT_TOPIC = "/v1.0/im/bot/messages/get"
CARD_TOPIC = "/v1.0/card/instances/callback"
TICKET_LIFETIME = 90.0  # seconds; a ticket opens one connection only (DingTalk behaviour)
SESSION_LIFETIME = 90 * 60.0  # a sessionWebhook expires 90 minutes after its message
# DingTalk's own code for per-app QPS throttling; answered with HTTP 403.
FLOW_CONTROL_CODE = "Forbidden.AccessDenied.QpsLimitForApi"


@dataclass
class Faults:
    """What the simulator gets wrong on purpose; tests flip these at run time."""

    fail_next: int = 0  # answer the next N OpenAPI/webhook calls with HTTP 500
    throttle_next: int = 0  # answer the next N with DingTalk flow control (HTTP 403)
    delay: float = 0.0  # seconds to wait before answering any OpenAPI/webhook call
    half_open: bool = False  # stop reading and answering pings, keep TCP open
    refuse_connections: int = 0  # answer the next N connections/open with HTTP 503


@dataclass
class Recorded:
    """One request the simulator received (tokens and secrets are never stored)."""

    method: str
    path: str
    body: Any
    at: float


@dataclass
class _Connection:
    ws: web.WebSocketResponse
    request: web.Request
    id: int


@dataclass
class SimulatorState:
    """Everything the simulator knows; guarded by ``lock`` for readers in other threads."""

    apps: dict[str, str]
    robot_code: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    tokens: set[str] = field(default_factory=set)
    tickets: dict[str, float] = field(default_factory=dict)
    sessions: dict[str, tuple[str, float]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    acks: list[dict[str, Any]] = field(default_factory=list)
    group_messages: list[dict[str, Any]] = field(default_factory=list)
    session_replies: list[dict[str, Any]] = field(default_factory=list)
    oto_messages: list[dict[str, Any]] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)
    recalled: list[str] = field(default_factory=list)
    pushed: list[str] = field(default_factory=list)  # messageIds of frames delivered to a socket
    connections_opened: int = 0


class Simulator:
    """The aiohttp application and its controls. Run it with :class:`SimulatorThread`.

    Real DingTalk never resends a robot message (fire-and-forget). With
    ``queue_when_offline=True`` (the default) frames pushed while no client is connected wait
    and are delivered on the next connection, so a test can tell "lost by the bot" from
    "lost by the transport"; ``False`` drops them as DingTalk would.
    """

    def __init__(
        self,
        *,
        client_id: str = "dingsimulatorapp",
        client_secret: str | None = None,
        robot_code: str | None = None,
        queue_when_offline: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """Configure one app; the secret is random unless given."""
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.state = SimulatorState({client_id: self.client_secret}, robot_code or client_id)
        self.faults = Faults()
        self.queue_when_offline = queue_when_offline
        self._host = host
        self._port = port
        self._connections: list[_Connection] = []
        self._offline: deque[dict[str, Any]] = deque()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> str:
        """Listen on 127.0.0.1 and return the base URL (DINGTALK_OPENAPI_ENDPOINT)."""
        app = web.Application()
        app.router.add_post("/v1.0/gateway/connections/open", self._open_connection)
        app.router.add_get("/connect", self._websocket)
        app.router.add_post("/v1.0/oauth2/accessToken", self._access_token)
        app.router.add_post("/robot/sendBySession", self._session_webhook)
        app.router.add_post("/v1.0/robot/groupMessages/send", self._group_send)
        app.router.add_post("/v1.0/robot/groupMessages/recall", self._group_recall)
        app.router.add_post("/v1.0/robot/oToMessages/batchSend", self._oto_send)
        app.router.add_post("/v1.0/robot/otoMessages/batchRecall", self._oto_recall)
        app.router.add_post("/v1.0/im/v1.0/robot/interactiveCards/send", self._card_send)
        app.router.add_put("/v1.0/im/robots/interactiveCards", self._card_update)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server
        assert server is not None  # noqa: S101  (just started)
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.base_url = f"http://{self._host}:{port}"
        return self.base_url

    async def stop(self) -> None:
        """Close every socket and stop listening."""
        for connection in list(self._connections):
            await connection.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- pushing frames --------------------------------------------------------------------
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
    ) -> dict[str, Any]:
        """A robot-message CALLBACK frame exactly as DingTalk sends it (``data`` is a string)."""
        now_ms = int(time.time() * 1000)
        msg_id = msg_id or f"msg{uuid.uuid4().hex}"
        session = uuid.uuid4().hex
        with self.state.lock:
            self.state.sessions[session] = (conversation_id, time.time() + SESSION_LIFETIME)
        data: dict[str, Any] = {
            "conversationId": conversation_id,
            "chatbotUserId": f"$:LWCP_v1:${self.state.robot_code}",
            "msgId": msg_id,
            "senderNick": sender_nick,
            "senderStaffId": sender_staff_id,
            "senderId": f"$:LWCP_v1:${sender_staff_id}",
            "conversationType": "2",
            "conversationTitle": conversation_title,
            "isInAtList": at_bot,
            "atUsers": [{"dingtalkId": f"$:LWCP_v1:${self.state.robot_code}"}] if at_bot else [],
            "isAdmin": False,
            "chatbotCorpId": "dingcorp",
            "senderCorpId": "dingcorp",
            "createAt": now_ms,
            "sessionWebhook": f"{self.base_url}/robot/sendBySession?session={session}",
            "sessionWebhookExpiredTime": now_ms + int(SESSION_LIFETIME * 1000),
            "robotCode": self.state.robot_code,
            "msgtype": msgtype,
        }
        if msgtype == "text":
            data["text"] = {"content": text}
        elif msgtype == "richText":
            data["content"] = {"richText": [{"text": text}]}
        else:
            data["content"] = {"downloadCode": uuid.uuid4().hex}
        return self._frame("CALLBACK", BOT_TOPIC, data)

    def card_callback_frame(
        self, out_track_id: str, user_id: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """A card-callback CALLBACK frame (a user pressed a button on an interactive card)."""
        content = json.dumps({"cardPrivateData": {"actionIds": list(params), "params": params}})
        data = {
            "outTrackId": out_track_id,
            "userId": user_id,
            "corpId": "dingcorp",
            "type": "actionCallback",
            "content": content,
            "extension": "{}",
            "spaceType": "im",
            "spaceId": "space",
        }
        return self._frame("CALLBACK", CARD_TOPIC, data)

    def _frame(self, frame_type: str, topic: str, data: dict[str, Any]) -> dict[str, Any]:
        now_ms = int(time.time() * 1000)
        return {
            "specVersion": "1.0",
            "type": frame_type,
            "headers": {
                "appId": self.client_id,
                "contentType": "application/json",
                "messageId": f"{uuid.uuid4().hex[:8]}_{now_ms % 1000}_{uuid.uuid4().hex[:10]}",
                "time": str(now_ms),
                "topic": topic,
            },
            "data": json.dumps(data, ensure_ascii=False),
        }

    async def push(self, frame: dict[str, Any]) -> bool:
        """Send a frame to one connected client (DingTalk picks one); queue or drop if none."""
        live = [c for c in self._connections if not c.ws.closed]
        if not live:
            if self.queue_when_offline:
                self._offline.append(frame)
            return False
        connection = live[next(self._ids) % len(live)]
        await connection.ws.send_str(json.dumps(frame, ensure_ascii=False))
        with self.state.lock:
            self.state.pushed.append(frame["headers"]["messageId"])
        return True

    async def ping(self) -> None:
        """A SYSTEM ping frame; the client must echo its opaque value."""
        frame = self._frame("SYSTEM", "ping", {"opaque": uuid.uuid4().hex})
        await self.push(frame)

    # -- faults on the socket --------------------------------------------------------------
    async def drop_connections(self) -> None:
        """Cut every socket without a close handshake (an abrupt TCP drop, code 1006)."""
        for connection in list(self._connections):
            transport = connection.request.transport
            if transport is not None:
                transport.abort()
        self._connections.clear()

    async def send_disconnect(self, close_after: float = 0.5) -> None:
        """SYSTEM disconnect to every client, then close the sockets after ``close_after`` s."""
        for connection in list(self._connections):
            frame = self._frame("SYSTEM", "disconnect", {"reason": "simulator maintenance"})
            await connection.ws.send_str(json.dumps(frame))
        await asyncio.sleep(close_after)
        for connection in list(self._connections):
            await connection.ws.close()

    @property
    def connection_count(self) -> int:
        """Sockets currently open."""
        return sum(1 for c in self._connections if not c.ws.closed)

    # -- handlers: Stream ------------------------------------------------------------------
    async def _open_connection(self, request: web.Request) -> web.Response:
        body = await _json(request)
        self._record(request, {k: v for k, v in (body or {}).items() if k != "clientSecret"})
        if self.faults.refuse_connections > 0:
            self.faults.refuse_connections -= 1
            return _error(503, "ServiceUnavailable", "gateway busy")
        if not isinstance(body, dict) or self.state.apps.get(
            str(body.get("clientId"))
        ) != body.get("clientSecret"):
            return _error(401, "InvalidAuthentication", "clientId or clientSecret is wrong")
        ticket = uuid.uuid4().hex
        with self.state.lock:
            self.state.tickets[ticket] = time.time() + TICKET_LIFETIME
        host = self.base_url.replace("http://", "ws://")
        return web.json_response({"endpoint": f"{host}/connect", "ticket": ticket})

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        with self.state.lock:
            expires = self.state.tickets.pop(ticket, 0.0)
        if expires < time.time():
            return web.Response(status=401, text="invalid or used ticket")
        # autoping off: the simulator answers pings itself, so it can stop when half-open.
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        connection = _Connection(ws, request, next(self._ids))
        self._connections.append(connection)
        with self.state.lock:
            self.state.connections_opened += 1
        while self._offline:
            await self.push(self._offline.popleft())
        try:
            await self._read(connection)
        finally:
            if connection in self._connections:
                self._connections.remove(connection)
        return ws

    async def _read(self, connection: _Connection) -> None:
        ws = connection.ws
        while not ws.closed:
            if self.faults.half_open:
                await asyncio.sleep(0.05)  # keep TCP open, read nothing, answer nothing
                continue
            try:
                message = await ws.receive(timeout=0.2)
            except TimeoutError:
                continue
            if message.type == WSMsgType.PING:
                await ws.pong(message.data)
            elif message.type == WSMsgType.TEXT:
                self._record_ack(message.data)
            elif message.type in (
                WSMsgType.CLOSE,
                WSMsgType.CLOSING,
                WSMsgType.CLOSED,
                WSMsgType.ERROR,
            ):
                break

    def _record_ack(self, raw: str) -> None:
        try:
            ack = json.loads(raw)
        except json.JSONDecodeError:
            log.warning("simulator: client sent a non-JSON frame")
            return
        with self.state.lock:
            self.state.acks.append(ack)

    # -- handlers: OpenAPI -----------------------------------------------------------------
    async def _access_token(self, request: web.Request) -> web.Response:
        body = await _json(request)
        self._record(request, {"appKey": (body or {}).get("appKey")})
        if not isinstance(body, dict) or self.state.apps.get(str(body.get("appKey"))) != body.get(
            "appSecret"
        ):
            return _error(400, "invalidClientIdOrSecret", "appKey or appSecret is wrong")
        token = secrets.token_hex(16)
        with self.state.lock:
            self.state.tokens.add(token)
        return web.json_response({"accessToken": token, "expireIn": 7200})

    async def _openapi(self, request: web.Request) -> tuple[Any, web.Response | None]:
        """Common checks: record, faults, token. Returns (body, error response or None)."""
        body = await _json(request)
        self._record(request, body)
        failure = await self._fault()
        if failure is not None:
            return body, failure
        if request.headers.get("x-acs-dingtalk-access-token") not in self.state.tokens:
            return body, _error(401, "InvalidAuthentication", "access token is missing or invalid")
        if not isinstance(body, dict):
            return body, _error(400, "InvalidParameter", "body must be a JSON object")
        return body, None

    async def _fault(self) -> web.Response | None:
        if self.faults.delay:
            await asyncio.sleep(self.faults.delay)
        if self.faults.fail_next > 0:
            self.faults.fail_next -= 1
            return _error(500, "InternalError", "simulated server error")
        if self.faults.throttle_next > 0:
            self.faults.throttle_next -= 1
            return _error(403, FLOW_CONTROL_CODE, "simulated flow control: too many requests")
        return None

    async def _group_send(self, request: web.Request) -> web.Response:
        body, failure = await self._openapi(request)
        if failure is not None:
            return failure
        missing = [
            k for k in ("robotCode", "openConversationId", "msgKey", "msgParam") if not body.get(k)
        ]
        if missing:
            return _error(400, "MissingParameter", f"missing {', '.join(missing)}")
        try:
            param = json.loads(body["msgParam"])
        except (TypeError, json.JSONDecodeError):
            return _error(400, "InvalidParameter.msgParam", "msgParam must be a JSON string")
        key = uuid.uuid4().hex
        with self.state.lock:
            self.state.group_messages.append(
                {
                    "conversation_id": body["openConversationId"],
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
        keys = [str(k) for k in body.get("processQueryKeys", [])]
        with self.state.lock:
            known = {m["process_query_key"] for m in self.state.group_messages}
            done = [k for k in keys if k in known]
            self.state.recalled.extend(done)
        failed = {k: "processQueryKey not found" for k in keys if k not in done}
        return web.json_response({"successResult": done, "failedResult": failed})

    async def _oto_send(self, request: web.Request) -> web.Response:
        body, failure = await self._openapi(request)
        if failure is not None:
            return failure
        key = uuid.uuid4().hex
        with self.state.lock:
            self.state.oto_messages.append({**body, "process_query_key": key})
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
        keys = [str(k) for k in body.get("processQueryKeys", [])]
        return web.json_response({"successResult": keys, "failedResult": {}})

    async def _card_send(self, request: web.Request) -> web.Response:
        body, failure = await self._openapi(request)
        if failure is not None:
            return failure
        with self.state.lock:
            self.state.cards.append(body)
        return web.json_response({"processQueryKey": uuid.uuid4().hex})

    async def _card_update(self, request: web.Request) -> web.Response:
        body, failure = await self._openapi(request)
        if failure is not None:
            return failure
        with self.state.lock:
            self.state.cards.append({**body, "update": True})
        return web.json_response({"success": True})

    # -- handlers: session webhook (the oapi.dingtalk.com style: HTTP 200 + errcode) --------
    async def _session_webhook(self, request: web.Request) -> web.Response:
        body = await _json(request)
        self._record(request, body)
        failure = await self._fault()
        if failure is not None:
            return failure
        session = request.query.get("session", "")
        with self.state.lock:
            conversation_id, expires = self.state.sessions.get(session, ("", 0.0))
        if expires < time.time():
            return web.json_response(
                {"errcode": 300001, "errmsg": "session webhook expired or invalid"}
            )
        if not isinstance(body, dict) or body.get("msgtype") not in (
            "text",
            "markdown",
            "actionCard",
        ):
            return web.json_response({"errcode": 40035, "errmsg": "invalid msgtype"})
        with self.state.lock:
            self.state.session_replies.append(
                {"conversation_id": conversation_id, **body, "received_at": time.time()}
            )
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def _record(self, request: web.Request, body: Any) -> None:
        with self.state.lock:
            self.state.requests.append(Recorded(request.method, request.path, body, time.time()))


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _error(status: int, code: str, message: str) -> web.Response:
    """DingTalk OpenAPI error shape (api.dingtalk.com)."""
    return web.json_response(
        {"code": code, "message": message, "requestid": uuid.uuid4().hex}, status=status
    )
