"""Injected HTTP faults, and the api.dingtalk.com error shape they (and every refusal) answer in.

Error codes marked "simulator's own" elsewhere are not DingTalk's: DingTalk does not document
the code it returns for that mistake, so the simulator picks a readable one in the same shape.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

# api.dingtalk.com answers per-app/per-API QPS throttling with HTTP 403 and this code (seen in
# third-party DingTalk clients; the variant ...QpsLimitForAppkeyAndApi also exists).
FLOW_CONTROL_CODE = "Forbidden.AccessDenied.QpsLimitForApi"
# For ``throttle_status=429``: not a code DingTalk is known to send; it lets a test check that a
# client also treats a bare HTTP 429 as flow control.
THROTTLING_CODE = "Throttling"


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

    async def injected(self) -> web.Response | None:
        """Wait the set delay, then the error to answer instead of the call, if one is due."""
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        if self.fail_next > 0:
            self.fail_next -= 1
            return api_error(500, "InternalError", "simulated server error")
        if self.throttle_next > 0:
            self.throttle_next -= 1
            if self.throttle_status == 429:
                return api_error(429, THROTTLING_CODE, "simulated throttling")
            return api_error(403, FLOW_CONTROL_CODE, "请求过于频繁 (simulated flow control)")
        return None


def api_error(status: int, code: str, message: str) -> web.Response:
    """The api.dingtalk.com error shape: HTTP status + ``{code, message, requestid}``."""
    return web.json_response(
        {"code": code, "message": message, "requestid": str(uuid.uuid4()).upper()}, status=status
    )


def missing(body: Mapping[str, Any], *names: str) -> web.Response | None:
    """400 naming the absent parameters (code: DingTalk's MissingParameter shape)."""
    absent = [name for name in names if body.get(name) in (None, "", [])]
    if absent:
        return api_error(400, "MissingParameter", f"missing {', '.join(absent)}")
    return None
