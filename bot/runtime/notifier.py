"""Sending notices: one chat message per group per interval (bursts summarised), escalations.

Robot messages to a group are rate-limited by DingTalk and a burst of warnings drowns the
chat, so each destination has an outbox: the first notice after a quiet period goes out at
once, the ones arriving within the interval go together as one summary when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Generic, TypeVar

import aiohttp

from bot.dingtalk.openapi import DingTalkError, OutboundClient
from bot.infra.group_commit import GroupCommit
from bot.infra.supervisor import Supervisor
from bot.runtime.notices import Delivery, Notice, render_escalations, render_warning

log = logging.getLogger(__name__)
T = TypeVar("T")


class Outbox(Generic[T]):
    """At most one chat message per ``interval`` to one destination.

    The first item after a quiet period goes out at once; items arriving within the interval
    are held and sent together as one summary when it ends. Each ``submit`` returns when the
    message carrying its item is delivered (or raises when delivery failed), so the caller
    can keep its queue entry until then.
    """

    def __init__(
        self,
        send: Callable[[list[T]], Awaitable[None]],
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``send`` delivers a batch (retries are its business)."""
        self._send = send
        self.interval = interval
        self.clock = clock
        self._next_at = 0.0
        self._hurry = asyncio.Event()
        # No batch limit: everything held during the interval is one summary message.
        self._batches: GroupCommit[T, int] = GroupCommit(
            self._deliver, max_batch=1 << 30, before_batch=self._wait_turn
        )
        self.last_used = clock()

    async def submit(self, item: T) -> int:
        """Queue ``item``; return the size of the batch it was delivered in."""
        self.last_used = self.clock()
        return await self._batches.submit(item)

    async def flush(self) -> None:
        """Send whatever is held now, ignoring the interval (shutdown)."""
        self._hurry.set()
        await self._batches.flush()

    @property
    def idle(self) -> bool:
        """Nothing held or being sent."""
        return self._batches.idle

    async def _wait_turn(self) -> None:
        delay = self._next_at - self.clock()
        if delay > 0 and not self._hurry.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), delay)
        self._next_at = self.clock() + self.interval

    async def _deliver(self, items: list[T]) -> list[int]:
        await self._send(items)
        return [len(items)] * len(items)


class Notifier:
    """Warnings to groups and escalations to the compliance group, rate-limited and batched."""

    def __init__(
        self,
        client: OutboundClient,
        *,
        compliance_conversation_id: str,
        warn_interval: float,
        escalation_interval: float,
        supervisor: Supervisor,
    ) -> None:
        """One outbox per group for warnings; one for the compliance group."""
        self.client = client
        self.compliance_conversation_id = compliance_conversation_id
        self.warn_interval = warn_interval
        self.supervisor = supervisor
        self._groups: dict[str, Outbox[Notice]] = {}
        self._compliance: Outbox[Notice] = Outbox(self._send_escalations, escalation_interval)

    async def warn(self, notice: Notice) -> Delivery:
        """Warn in the message's group (sessionWebhook, else groupMessages/send)."""
        if not notice.message.conversation_id and not notice.message.session_webhook:
            return Delivery(ok=False, channel="none", batch=0, detail="no group to warn in")
        key = notice.message.conversation_id or notice.message.session_webhook
        outbox = self._groups.get(key)
        if outbox is None:
            self._prune()
            outbox = self._groups[key] = Outbox(self._send_warnings, self.warn_interval)
        try:
            batch = await outbox.submit(notice)
        except (DingTalkError, aiohttp.ClientError, TimeoutError) as error:
            return Delivery(ok=False, channel="group", detail=_describe(error))
        return Delivery(ok=True, channel="group", batch=batch)

    async def escalate(self, notice: Notice) -> Delivery:
        """Open a case in the compliance group."""
        try:
            batch = await self._compliance.submit(notice)
        except (DingTalkError, aiohttp.ClientError, TimeoutError) as error:
            return Delivery(ok=False, channel="compliance", detail=_describe(error))
        return Delivery(ok=True, channel="compliance", batch=batch)

    async def tell_compliance(self, title: str, text: str) -> bool:
        """Send an operational notice (e.g. a rejected rule set) to the compliance group."""
        try:
            await self.client.send_group_markdown(self.compliance_conversation_id, title, text)
        except (DingTalkError, aiohttp.ClientError, TimeoutError) as error:
            self.supervisor.report("notify", error, expected=True)
            log.error("could not notify the compliance group", extra={"reason": _describe(error)})
            return False
        return True

    async def flush(self) -> None:
        """Deliver everything held back by the rate limits now (shutdown)."""
        await asyncio.gather(self._compliance.flush(), *(o.flush() for o in self._groups.values()))

    async def _send_warnings(self, notices: list[Notice]) -> None:
        title, text, at = render_warning(notices, self.warn_interval)
        now = datetime.now(UTC)
        # Any live sessionWebhook of the group will do; the newest lives longest.
        live = [n for n in notices if n.webhook_alive(now)]
        if live:
            try:
                await self.client.reply_webhook(live[-1].message.session_webhook, title, text, at)
            except DingTalkError as error:
                if not notices[-1].message.conversation_id:
                    raise
                log.warning(
                    "sessionWebhook failed; falling back to groupMessages/send",
                    extra={"error": _describe(error), "stage": "notify"},
                )
            else:
                return
        conversation_id = notices[-1].message.conversation_id
        if not conversation_id:
            raise DingTalkError("warning", 0, "no destination", retryable=False)
        await self.client.send_group_markdown(conversation_id, title, text)

    async def _send_escalations(self, notices: list[Notice]) -> None:
        for title, text in render_escalations(notices):
            await self.client.send_group_markdown(self.compliance_conversation_id, title, text)

    def _prune(self) -> None:
        """Forget idle per-group outboxes so a bot in many groups does not grow forever."""
        if len(self._groups) < 1024:
            return
        cutoff = time.monotonic() - 10 * self.warn_interval
        for key in [k for k, o in self._groups.items() if o.idle and o.last_used < cutoff]:
            del self._groups[key]


def _describe(error: BaseException) -> str:
    if isinstance(error, DingTalkError):
        return f"{error.endpoint} HTTP {error.status} {error.code}"
    return type(error).__name__
