"""The robot OpenAPI (api.dingtalk.com style): access token, messages, recall, cards."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from aiohttp import web

from bot.simulator.faults import Faults, api_error, missing
from bot.simulator.state import SimulatorState

TOKEN_LIFETIME = 7200  # seconds, the ``expireIn`` DingTalk answers
# msgParam fields each msgKey needs (DingTalk's robot message templates); other
# ``sample*`` keys are accepted without a field check.
MSG_PARAMS = {"sampleText": ("content",), "sampleMarkdown": ("title", "text")}
NOT_RECALLED = "processQueryKey not found or already recalled"


class OpenApi:
    """The OpenAPI endpoints the bot (and the SDK's card methods) call, for one app."""

    def __init__(self, state: SimulatorState, faults: Faults) -> None:
        """Record into ``state``; ``faults`` apply to every endpoint but the token."""
        self.state = state
        self.faults = faults

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Serve the endpoints, and DingTalk's 404 for any other path."""
        router.add_post("/v1.0/oauth2/accessToken", self._access_token)
        router.add_post("/v1.0/robot/groupMessages/send", self._group_send)
        router.add_post("/v1.0/robot/groupMessages/recall", self._group_recall)
        router.add_post("/v1.0/robot/oToMessages/batchSend", self._oto_send)
        router.add_post("/v1.0/robot/otoMessages/batchRecall", self._oto_recall)
        router.add_post("/v1.0/im/v1.0/robot/interactiveCards/send", self._card_send)
        router.add_put("/v1.0/im/robots/interactiveCards", self._card_update)
        router.add_route("*", "/{tail:.*}", self._not_found)

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working (clients must fetch a new one)."""
        with self.state.lock:
            self.state.tokens.clear()

    async def _access_token(self, request: web.Request) -> web.Response:
        body = await self.state.receive(request)
        if not isinstance(body, dict) or not self.state.app_ok(
            body.get("appKey"), body.get("appSecret")
        ):
            return api_error(400, "invalidClientIdOrSecret", "appKey or appSecret is wrong")
        token = secrets.token_hex(16)
        with self.state.lock:
            self.state.tokens[token] = time.time() + TOKEN_LIFETIME
        return web.json_response({"accessToken": token, "expireIn": TOKEN_LIFETIME})

    async def _checked(
        self, request: web.Request, *required: str
    ) -> tuple[dict[str, Any], web.Response | None]:
        """Record, inject faults, check the token and the body; (body, error or None)."""
        raw = await self.state.receive(request)
        failure = await self.faults.injected()
        if failure is not None:
            return {}, failure
        token = request.headers.get("x-acs-dingtalk-access-token", "")
        with self.state.lock:
            valid = self.state.tokens.get(token, 0.0) > time.time()
        if not valid:
            return {}, api_error(401, "InvalidAuthentication", "不合法的access_token")
        if not isinstance(raw, dict):
            return {}, api_error(400, "InvalidParameter", "body must be a JSON object")
        if "robotCode" in raw and raw["robotCode"] != self.state.robot_code:
            # simulator's own code: robotCode must be this app's (the AppKey for app robots)
            return raw, api_error(400, "InvalidParameter.RobotCode", "robotCode is not this app's")
        return raw, missing(raw, *required)

    async def _message(
        self, request: web.Request, *required: str
    ) -> tuple[dict[str, Any], dict[str, Any], web.Response | None]:
        """A checked send request: (body, decoded msgParam, error or None)."""
        body, failure = await self._checked(request, *required, "msgKey", "msgParam")
        if failure is not None:
            return body, {}, failure
        param, failure = _msg_param(body)
        return body, param, failure

    async def _group_send(self, request: web.Request) -> web.Response:
        body, param, failure = await self._message(request, "robotCode", "openConversationId")
        if failure is not None:
            return failure
        message = {
            "conversation_id": body["openConversationId"],
            "robot_code": body["robotCode"],
            "msg_key": body["msgKey"],
            "param": param,
        }
        return web.json_response(
            {"processQueryKey": self._keep(self.state.group_messages, message)}
        )

    async def _group_recall(self, request: web.Request) -> web.Response:
        body, failure = await self._checked(
            request, "robotCode", "openConversationId", "processQueryKeys"
        )
        if failure is not None:
            return failure
        group = body["openConversationId"]
        return self._recall(
            body, self.state.group_messages, lambda m: m["conversation_id"] == group
        )

    async def _oto_send(self, request: web.Request) -> web.Response:
        body, param, failure = await self._message(request, "robotCode", "userIds")
        if failure is not None:
            return failure
        message = {
            "user_ids": [str(u) for u in body["userIds"]],
            "msg_key": body["msgKey"],
            "param": param,
        }
        return web.json_response(
            {
                "processQueryKey": self._keep(self.state.oto_messages, message),
                "invalidStaffIdList": [],
                "flowControlledStaffIdList": [],
                "filteredStaffIdList": [],
            }
        )

    async def _oto_recall(self, request: web.Request) -> web.Response:
        body, failure = await self._checked(request, "robotCode", "processQueryKeys")
        if failure is not None:
            return failure
        return self._recall(body, self.state.oto_messages, lambda m: True)

    def _keep(self, sent: list[dict[str, Any]], message: dict[str, Any]) -> str:
        """Record a sent message under a fresh processQueryKey (what a recall names it by)."""
        key = secrets.token_urlsafe(24)
        with self.state.lock:
            sent.append({**message, "process_query_key": key, "received_at": time.time()})
        return key

    def _recall(
        self,
        body: Mapping[str, Any],
        sent: Collection[dict[str, Any]],
        mine: Callable[[dict[str, Any]], bool],
    ) -> web.Response:
        """Recall works once per processQueryKey, and only on messages the bot itself sent."""
        keys = [str(k) for k in body["processQueryKeys"]]
        with self.state.lock:
            known = {m["process_query_key"] for m in sent if mine(m)}
            done = [k for k in keys if k in known and k not in self.state.recalled]
            self.state.recalled.extend(done)
        failed = {k: NOT_RECALLED for k in keys if k not in done}
        return web.json_response({"successResult": done, "failedResult": failed})

    async def _card_send(self, request: web.Request) -> web.Response:
        body, failure = await self._checked(
            request, "cardTemplateId", "robotCode", "cardData", "cardBizId"
        )
        if failure is not None:
            return failure
        if not body.get("openConversationId") and not body.get("singleChatReceiver"):
            return api_error(400, "MissingParameter", "openConversationId or singleChatReceiver")
        with self.state.lock:
            self.state.cards.append({**body, "received_at": time.time()})
        return web.json_response({"processQueryKey": secrets.token_urlsafe(24)})

    async def _card_update(self, request: web.Request) -> web.Response:
        body, failure = await self._checked(request, "cardBizId", "cardData")
        if failure is not None:
            return failure
        with self.state.lock:
            known = any(c.get("cardBizId") == body["cardBizId"] for c in self.state.cards)
            if known:
                self.state.cards.append({**body, "update": True, "received_at": time.time()})
        if not known:
            return api_error(400, "InvalidParameter.CardBizId", "no card with this cardBizId")
        return web.json_response({"success": True})

    async def _not_found(self, request: web.Request) -> web.Response:
        await self.state.receive(request)
        # The API gateway's answer for a path/method it does not know.
        return api_error(
            404,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        )


def _msg_param(body: Mapping[str, Any]) -> tuple[dict[str, Any], web.Response | None]:
    """Decode ``msgParam`` (a JSON *string*, not an object) and check it fits ``msgKey``."""
    key = str(body.get("msgKey", ""))
    if not key.startswith("sample"):  # simulator's own code
        return {}, api_error(400, "InvalidParameter.MsgKey", f"unknown msgKey {key!r}")
    raw = body.get("msgParam")
    try:
        param = json.loads(raw) if isinstance(raw, str) else None
    except json.JSONDecodeError:
        param = None
    if not isinstance(param, dict):
        return {}, api_error(400, "InvalidParameter.MsgParam", "msgParam must be a JSON string")
    absent = [name for name in MSG_PARAMS.get(key, ()) if not param.get(name)]
    if absent:
        return {}, api_error(400, "InvalidParameter.MsgParam", f"{key} needs {', '.join(absent)}")
    return param, None
