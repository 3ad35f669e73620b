"""The Simulator: one app's local DingTalk on 127.0.0.1, its lifecycle and the frames it pushes.

The Stream side is :class:`~bot.simulator.gateway.StreamGateway` (which the Simulator is), the
OpenAPI is :mod:`bot.simulator.openapi`, session webhooks :mod:`bot.simulator.webhooks`.
"""

from __future__ import annotations

import secrets
import socket
import uuid
from typing import Any

from aiohttp import web

from bot.simulator import frames
from bot.simulator.faults import Faults
from bot.simulator.gateway import StreamGateway
from bot.simulator.openapi import OpenApi
from bot.simulator.state import SimulatorState
from bot.simulator.webhooks import SessionWebhooks


class Simulator(StreamGateway):
    """A local DingTalk for one app, on one event loop. Use :class:`SimulatorThread` with the SDK.

    Modelled: connections/open with single-use 90 s tickets; the ``/connect`` websocket with
    real frames, ACK recording, SYSTEM ping and disconnect; the access token; groupMessages
    send/recall, oToMessages batchSend/batchRecall, robot interactive cards; session webhooks
    (oapi style: HTTP 200 with ``errcode``); a DingTalk-shaped 404 for anything else.

    Delivery (``queue_when_offline``, ``redeliver_unacked``, round-robin over sockets) is the
    gateway's: see :class:`~bot.simulator.gateway.StreamGateway`.
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
        state = SimulatorState({client_id: self.client_secret}, robot_code or client_id)
        super().__init__(state, Faults())
        self.queue_when_offline = queue_when_offline
        self.redeliver_unacked = redeliver_unacked
        self.openapi = OpenApi(state, self.faults)
        self.webhooks = SessionWebhooks(state, self.faults)
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None

    @property
    def robot_code(self) -> str:
        """The robotCode OpenAPI calls must carry."""
        return self.state.robot_code

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> str:
        """Listen and return the base URL (the value for DINGTALK_OPENAPI_ENDPOINT)."""
        app = web.Application()
        self.add_routes(app.router)
        self.webhooks.add_routes(app.router)
        self.openapi.add_routes(app.router)  # last: it answers 404 for every other path
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
        await self.close_all()
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
        data = frames.robot_message_data(
            conversation_id=conversation_id,
            text=text,
            robot_code=self.state.robot_code,
            session_webhook=self.webhooks.mint(self.base_url, conversation_id),
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

    # -- state changes ---------------------------------------------------------------------
    def expire_tokens(self) -> None:
        """Every access token issued so far stops working (clients must fetch a new one)."""
        self.openapi.expire_tokens()

    def expire_sessions(self) -> None:
        """Every sessionWebhook handed out so far answers ``errcode 300001``."""
        self.webhooks.expire()
