"""What the simulator records (read from other threads under one lock); secrets never stored."""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# Never recorded: credentials in headers, query strings and bodies.
SECRET_HEADERS = frozenset(
    {"x-acs-dingtalk-access-token", "authorization", "proxy-authorization", "cookie"}
)
SECRET_QUERY = frozenset({"ticket", "session", "access_token", "sign"})
SECRET_BODY = frozenset({"clientSecret", "appSecret"})


@dataclass(frozen=True)
class Recorded:
    """One HTTP request as received; tokens, tickets, sessions and secrets are left out."""

    method: str
    path: str
    body: Any
    at: float
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)


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

    def app_ok(self, client_id: object, secret: object) -> bool:
        """True when ``client_id``/``secret`` are a known app's key and secret."""
        expected = self.apps.get(str(client_id))
        return (
            expected is not None
            and isinstance(secret, str)
            and secrets.compare_digest(expected, secret)
        )

    def record(self, request: web.Request, body: Any) -> None:
        """Keep a copy of the request, without its credentials."""
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k not in SECRET_BODY}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in SECRET_HEADERS}
        query = {k: ("***" if k in SECRET_QUERY else v) for k, v in request.query.items()}
        recorded = Recorded(request.method, request.path, body, time.time(), headers, query)
        with self.lock:
            self.requests.append(recorded)

    async def receive(self, request: web.Request) -> Any:
        """Read the JSON body (None when absent or not JSON) and record the request."""
        body = await read_json(request)
        self.record(request, body)
        return body


async def read_json(request: web.Request) -> Any:
    """The request's JSON body, or None when it has none or it is not JSON."""
    if not request.can_read_body:
        return None
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
