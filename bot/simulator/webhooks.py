"""Session webhooks: one per robot message, answering oapi style (HTTP 200 + errcode)."""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from bot.simulator.faults import Faults
from bot.simulator.frames import SESSION_LIFETIME
from bot.simulator.state import SimulatorState

WEBHOOK_PATH = "/robot/sendBySession"
# What oapi.dingtalk.com answers (HTTP 200) for an expired or unknown sessionWebhook.
SESSION_GONE = {"errcode": 300001, "errmsg": "session 不存在"}
# The msgtypes a session webhook takes; anything else is DingTalk's "missing msgtype".
REPLY_TYPES = ("text", "markdown", "actionCard", "link", "feedCard")


class SessionWebhooks:
    """Hands out sessionWebhook URLs and records what is posted to them."""

    def __init__(self, state: SimulatorState, faults: Faults) -> None:
        """Record into ``state``; ``faults`` (500s, flow control, delay) apply here too."""
        self.state = state
        self.faults = faults

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Serve the webhook path."""
        router.add_post(WEBHOOK_PATH, self._post)

    def mint(self, base_url: str, conversation_id: str) -> str:
        """A fresh sessionWebhook URL for a message in ``conversation_id`` (lives 90 min)."""
        session = secrets.token_hex(16)
        with self.state.lock:
            self.state.sessions[session] = (conversation_id, time.time() + SESSION_LIFETIME)
        return f"{base_url}{WEBHOOK_PATH}?session={session}"

    def expire(self) -> None:
        """Every sessionWebhook handed out so far answers ``errcode 300001``."""
        with self.state.lock:
            self.state.sessions.clear()

    async def _post(self, request: web.Request) -> web.Response:
        body = await self.state.receive(request)
        failure = await self.faults.injected()
        if failure is not None:  # injected faults answer in the api style (HTTP 5xx/4xx) here too
            return failure
        with self.state.lock:
            session = self.state.sessions.get(request.query.get("session", ""))
        if session is None or session[1] < time.time():
            return web.json_response(SESSION_GONE)
        if not isinstance(body, dict) or body.get("msgtype") not in REPLY_TYPES:
            return web.json_response({"errcode": 40035, "errmsg": "缺少参数 msgtype"})
        with self.state.lock:
            self.state.session_replies.append(
                {"conversation_id": session[0], **body, "received_at": time.time()}
            )
        return web.json_response({"errcode": 0, "errmsg": "ok"})
