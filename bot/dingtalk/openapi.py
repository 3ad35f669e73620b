"""Calls to DingTalk (token, groupMessages/send, sessionWebhook replies) with our own aiohttp.

The SDK's own senders use blocking ``requests`` with no timeout inside the event loop, so
every outbound call is made here instead: a timeout per attempt, retries with backoff and
jitter on network errors, 5xx and flow control, and the access token cached and refreshed
once on 401.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp

from bot.infra.backoff import Backoff
from bot.infra.errors import ConfigError
from bot.infra.metrics import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")

# sessionWebhook (oapi.dingtalk.com) answers HTTP 200 with an errcode. These mean "later":
# 130101 send too fast (custom-robot style throttling), 15/88 upstream timeouts, -1 busy.
RETRYABLE_ERRCODES = frozenset({-1, 15, 88, 130101})
# api.dingtalk.com flow control comes back as 403/429 with one of these codes.
FLOW_CONTROL_MARKERS = ("QpsLimit", "Throttl", "FlowControl", "flowControl", "RateLimit")


class DingTalkError(Exception):
    """A DingTalk call failed; ``retryable`` says whether trying again can help."""

    def __init__(
        self, endpoint: str, status: int, code: str, *, retryable: bool, retry_after: float = 0
    ) -> None:
        """``code`` is DingTalk's error code (or errcode), never a response body."""
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(f"{endpoint}: HTTP {status} {code}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one call: attempts, a timeout per attempt, the backoff between them."""

    attempts: int = 4
    timeout: float = 5.0  # per attempt
    backoff: Backoff = field(default_factory=lambda: Backoff(base=0.25, cap=8.0))


class OutboundClient:
    """The bot's DingTalk HTTP client."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        endpoint: str,
        client_id: str,
        client_secret: str,
        robot_code: str,
        metrics: Metrics,
        policy: RetryPolicy | None = None,
        webhook_hosts: Collection[str] = (),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``webhook_hosts``: the only hosts a sessionWebhook may point at (no SSRF by frame)."""
        self.session = session
        self.endpoint = endpoint.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self.robot_code = robot_code
        self.metrics = metrics
        self.policy = policy or RetryPolicy()
        self.webhook_hosts = frozenset(webhook_hosts)
        self.sleep = sleep
        self._token = ""
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()

    # -- token ------------------------------------------------------------------------------
    async def access_token(self, *, refresh: bool = False) -> str:
        """The cached app access token, fetched when missing, near expiry or ``refresh``."""
        if not refresh and self._token and time.monotonic() < self._token_expires:
            return self._token
        async with self._token_lock:  # one fetch however many callers are waiting
            if not refresh and self._token and time.monotonic() < self._token_expires:
                return self._token
            body = {"appKey": self.client_id, "appSecret": self._secret}
            data = await self._with_retries(
                "accessToken",
                lambda: self._post_api("accessToken", "/v1.0/oauth2/accessToken", body, None),
            )
            token = data.get("accessToken")
            if not isinstance(token, str) or not token:
                raise DingTalkError("accessToken", 200, "no accessToken", retryable=False)
            expire_in = float(data.get("expireIn", 7200))
            # Refresh five minutes early, as the SDK does, so no call carries a dying token.
            self._token = token
            self._token_expires = time.monotonic() + max(expire_in - 300, expire_in / 2)
            return token

    async def check_credentials(self) -> None:
        """Fetch a token at start-up; a rejection becomes a ConfigError naming the settings."""
        try:
            await self.access_token(refresh=True)
        except DingTalkError as error:
            if error.status in {400, 401, 403}:
                raise ConfigError(
                    "DINGTALK_CLIENT_ID/DINGTALK_CLIENT_SECRET",
                    f"DingTalk rejected the credentials (HTTP {error.status} {error.code})",
                ) from None
            raise ConfigError(
                "DINGTALK_OPENAPI_ENDPOINT",
                f"DingTalk did not issue a token (HTTP {error.status} {error.code})",
            ) from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ConfigError(
                "DINGTALK_OPENAPI_ENDPOINT",
                f"cannot reach {self.endpoint}: {type(error).__name__}",
            ) from None

    # -- sends ------------------------------------------------------------------------------
    async def send_group_markdown(self, conversation_id: str, title: str, text: str) -> str:
        """``groupMessages/send`` a markdown message; returns DingTalk's processQueryKey."""
        body = {
            "robotCode": self.robot_code,
            "openConversationId": conversation_id,
            "msgKey": "sampleMarkdown",
            # msgParam is a JSON *string* inside the JSON body.
            "msgParam": json.dumps({"title": title, "text": text}, ensure_ascii=False),
        }

        async def call() -> dict[str, Any]:
            token = await self.access_token()
            try:
                return await self._post_api(
                    "groupMessages/send", "/v1.0/robot/groupMessages/send", body, token
                )
            except DingTalkError as error:
                if error.status == 401:
                    await self.access_token(refresh=True)
                    error.retryable = True
                raise

        data = await self._with_retries("groupMessages/send", call)
        return str(data.get("processQueryKey", ""))

    async def reply_webhook(
        self, webhook: str, title: str, text: str, at_staff_ids: Collection[str]
    ) -> None:
        """POST a markdown reply to a message's sessionWebhook, @-mentioning ``at_staff_ids``."""
        parts = urlsplit(webhook)
        if parts.scheme not in {"http", "https"} or parts.netloc not in self.webhook_hosts:
            raise DingTalkError("sessionWebhook", 0, "host not allowed", retryable=False)
        body = {
            "msgtype": "markdown",
            "markdown": {"title": title, "text": text},
            "at": {"atUserIds": sorted(set(at_staff_ids)), "isAtAll": False},
        }
        await self._with_retries("sessionWebhook", lambda: self._post_webhook(webhook, body))

    # -- plumbing ---------------------------------------------------------------------------
    async def _with_retries(self, name: str, call: Callable[[], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            try:
                result = await call()
            except DingTalkError as error:
                if not error.retryable or attempt + 1 >= self.policy.attempts:
                    self.metrics.outbound.labels(endpoint=name, result="failed").inc()
                    raise
                delay = max(error.retry_after, self.policy.backoff.delay(attempt))
                reason = error.code or str(error.status)
            except (aiohttp.ClientError, TimeoutError) as error:
                if attempt + 1 >= self.policy.attempts:
                    self.metrics.outbound.labels(endpoint=name, result="failed").inc()
                    raise
                delay = self.policy.backoff.delay(attempt)
                reason = type(error).__name__
            else:
                self.metrics.outbound.labels(endpoint=name, result="ok").inc()
                return result
            self.metrics.outbound.labels(endpoint=name, result="retry").inc()
            log.warning(
                "dingtalk call failed; retrying",
                extra={"endpoint": name, "reason": reason, "delay": round(delay, 3)},
            )
            attempt += 1
            await self.sleep(min(delay, self.policy.backoff.cap))

    async def _post_api(
        self, name: str, path: str, body: dict[str, Any], token: str | None
    ) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["x-acs-dingtalk-access-token"] = token
        timeout = aiohttp.ClientTimeout(total=self.policy.timeout)
        async with self.session.post(
            self.endpoint + path, json=body, headers=headers, timeout=timeout
        ) as response:
            data = await _json(response)
            if response.status < 300:
                return data
            code = str(data.get("code", ""))
            flow = response.status == 429 or any(m in code for m in FLOW_CONTROL_MARKERS)
            raise DingTalkError(
                name,
                response.status,
                code,
                retryable=response.status >= 500 or flow,
                retry_after=_retry_after(response),
            )

    async def _post_webhook(self, url: str, body: dict[str, Any]) -> None:
        timeout = aiohttp.ClientTimeout(total=self.policy.timeout)
        async with self.session.post(url, json=body, timeout=timeout) as response:
            data = await _json(response)
            if response.status >= 300:
                raise DingTalkError(
                    "sessionWebhook",
                    response.status,
                    str(data.get("errcode", data.get("code", ""))),
                    retryable=response.status >= 500 or response.status == 429,
                    retry_after=_retry_after(response),
                )
            errcode = data.get("errcode", 0)
            if errcode not in (0, None):
                code = (
                    int(errcode)
                    if isinstance(errcode, int | str) and str(errcode).lstrip("-").isdigit()
                    else -2
                )
                raise DingTalkError(
                    "sessionWebhook",
                    response.status,
                    f"errcode {errcode}",
                    retryable=code in RETRYABLE_ERRCODES,
                )


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        data = await response.json(content_type=None)
    except (json.JSONDecodeError, aiohttp.ContentTypeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _retry_after(response: aiohttp.ClientResponse) -> float:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return 0.0
