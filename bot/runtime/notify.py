"""Warnings and escalations: bilingual markdown rendering, per-group rate limits and aggregation.

Rendering never sees the message text: a warning is built from rule titles and messages,
an escalation from the redacted copy, so personal data found in a message cannot be echoed
into a chat (PCPD code on ID numbers; never an HKID beside a name).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Generic, TypeVar

import aiohttp

from bot.dingtalk.openapi import DingTalkError
from bot.domain import Category, Severity

if TYPE_CHECKING:
    from bot.dingtalk.openapi import OutboundClient
    from bot.infra.ops import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")

HKT = timezone(timedelta(hours=8))
SESSION_WEBHOOK_LIFETIME = timedelta(minutes=90)  # DingTalk: valid 90 min after the message
WEBHOOK_MARGIN = timedelta(minutes=5)
MAX_CHUNK_BYTES = 16_000  # DingTalk rejects messages over ~20,000 bytes (UTF-8; CJK is 3 each)
MAX_AT = 20
CATEGORY_WORDS = {
    Category.ADVICE: ("投資建議或保證", "investment advice or guarantees"),
    Category.PII: ("個人資料", "personal data"),
    Category.OFF_CHANNEL: ("轉往非受監管渠道", "moving off approved channels"),
}
SEVERITY_WORDS = {Severity.LOW: "低 LOW", Severity.MEDIUM: "中 MEDIUM", Severity.HIGH: "高 HIGH"}


@dataclass(frozen=True, slots=True)
class RuleNote:
    """What a chat message may say about a rule: its plain-words title and advice."""

    rule_id: str
    title: str
    category: Category
    severity: Severity
    message_zh: str = ""
    message_en: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    """One flagged message as the notifier sees it: metadata and rules, never the raw text."""

    message_id: str
    case_id: str
    sender_id: str
    sender_name: str
    sender_staff_id: str
    conversation_id: str
    conversation_title: str
    source: str
    sent_at: datetime | None
    session_webhook: str
    rules: tuple[RuleNote, ...]
    severity: Severity
    redacted: str | None  # masked copy for the group, only when the policy asks for one
    escalation_text: str = ""  # masked copy for the compliance group (always masked)
    strikes: int = 0
    repeat_offender: bool = False
    repeat_window_minutes: int = 0

    def webhook_alive(self, now: datetime) -> bool:
        """Whether the sessionWebhook can still be used."""
        if not self.session_webhook:
            return False
        if self.sent_at is None:
            return True
        return now < self.sent_at + SESSION_WEBHOOK_LIFETIME - WEBHOOK_MARGIN


@dataclass(frozen=True, slots=True)
class Delivery:
    """What happened to one warning or escalation."""

    ok: bool
    channel: str  # "webhook" | "group" | "compliance" | "none"
    batch: int = 1  # how many notices shared the chat message
    detail: str = ""


# -- rendering ------------------------------------------------------------------------------
def _clean(value: str, limit: int = 80) -> str:
    """A user-controlled name or title on one line, without markdown that could break layout."""
    flat = " ".join(value.split())
    for char in "*_`#>[]|":
        flat = flat.replace(char, " ")
    return flat[:limit] or "?"


def _quote(text: str, limit: int) -> str:
    body = text if len(text) <= limit else text[:limit] + " …"
    lines = [line.replace("`", "'") for line in body.splitlines() if line.strip()] or ["(empty)"]
    return "\n".join(f"> {line}" for line in lines[:12])


def _mention(notice: Notice) -> str:
    # DingTalk renders "@<staffId>" as a mention when the id is also in at.atUserIds.
    return (
        f"@{notice.sender_staff_id}"
        if notice.sender_staff_id
        else f"**{_clean(notice.sender_name)}**"
    )


def render_warning(notices: Sequence[Notice], window_seconds: float) -> tuple[str, str, list[str]]:
    """(title, markdown, staff ids to @-mention) for one group; one notice or a summary."""
    title = "合規提示 Compliance notice"
    at = sorted({n.sender_staff_id for n in notices if n.sender_staff_id})[:MAX_AT]
    if len(notices) == 1:
        notice = notices[0]
        lines = [
            f"#### ⚠️ {title}",
            f"{_mention(notice)} 你的訊息觸及以下合規規則 · Your message matched:",
            "",
        ]
        for rule in notice.rules:
            lines.append(f"- **{rule.title}**")
            if rule.message_zh:
                lines.append(f"  {rule.message_zh}")
            if rule.message_en:
                lines.append(f"  {rule.message_en}")
        if notice.redacted is not None:
            lines += ["", "已遮蔽個人資料的副本 · Copy with personal data masked:", ""]
            lines.append(_quote(notice.redacted, 500))
        lines += [
            "",
            "此訊息已記錄，供合規部審閱。This message has been recorded for compliance review.",
        ]
        return title, "\n".join(lines), at
    senders = Tally(_mention(n) for n in notices)
    rules = Tally(rule.title for n in notices for rule in n.rules)
    categories = {rule.category for n in notices for rule in n.rules}
    window = max(1, round(window_seconds))
    lines = [
        f"#### ⚠️ {title} ({len(notices)})",
        f"過去約 {window} 秒內，{len(notices)} 則訊息觸及合規規則 · "
        f"{len(notices)} messages in the last ~{window}s matched compliance rules.",
        "",
        "**發送者 Senders:** "
        + ", ".join(f"{name} ×{count}" for name, count in senders.most_common(MAX_AT)),
        "",
    ]
    lines += [f"- **{name}** ×{count}" for name, count in rules.most_common(10)]
    if len(rules) > 10:
        lines.append(f"- … {len(rules) - 10} more")
    lines += [
        "",
        "請勿在群內分享"
        + "、".join(CATEGORY_WORDS[c][0] for c in Category if c in categories)
        + "。Please keep "
        + ", ".join(CATEGORY_WORDS[c][1] for c in Category if c in categories)
        + " out of this group.",
        "所有訊息已記錄，供合規部審閱。All messages have been recorded for compliance review.",
    ]
    return title, "\n".join(lines), at


def _case_block(notice: Notice, *, heading: str) -> list[str]:
    rules = ", ".join(f"{r.title} (`{r.rule_id}`)" for r in notice.rules)
    reason = "政策 policy"
    if notice.repeat_offender:
        reason = (
            f"重複違規 repeat offender: {notice.strikes} flagged messages "
            f"in {notice.repeat_window_minutes} min"
        )
    when = (notice.sent_at or datetime.now(UTC)).astimezone(HKT).strftime("%Y-%m-%d %H:%M:%S HKT")
    group = _clean(notice.conversation_title or "-")
    return [
        heading,
        f"- **嚴重程度 Severity:** {SEVERITY_WORDS[notice.severity]}",
        f"- **發送者 Sender:** {_clean(notice.sender_name)} ({_clean(notice.sender_id, 64)})",
        f"- **群組 Group:** {group} ({_clean(notice.conversation_id or '-', 64)})",
        f"- **規則 Rules:** {rules}",
        f"- **原因 Reason:** {reason}",
        f"- **時間 Time:** {when} · **來源 Source:** {notice.source}",
        "",
        _quote(notice.escalation_text or "(no text)", 1000),
    ]


def render_escalations(notices: Sequence[Notice]) -> list[tuple[str, str]]:
    """(title, markdown) messages for the compliance group: one case, or a digest in chunks."""
    if len(notices) == 1:
        notice = notices[0]
        title = f"合規個案 Compliance case {notice.case_id}"
        return [(title, "\n".join(_case_block(notice, heading=f"#### 🚨 {title}")))]
    out: list[tuple[str, str]] = []
    title = f"合規個案 Compliance cases ({len(notices)})"
    header = [f"#### 🚨 {title}", ""]
    current = list(header)
    for notice in notices:
        block = [*_case_block(notice, heading=f"**{notice.case_id}**"), "", "---", ""]
        size = len("\n".join(current + block).encode("utf-8"))
        if size > MAX_CHUNK_BYTES and len(current) > len(header):
            out.append((title, "\n".join(current)))
            current = list(header)
        current += block
    out.append((title, "\n".join(current)))
    return out


def render_rules_rejected(replica: str, running: str, problems: Sequence[str]) -> tuple[str, str]:
    """The compliance-group notice for a rule set that failed validation."""
    title = "規則更新被拒 Rule update rejected"
    shown = [f"- `{_clean(p, 300)}`" for p in problems[:20]]
    if len(problems) > 20:
        shown.append(f"- … {len(problems) - 20} more")
    text = "\n".join(
        [
            f"#### ⛔ {title}",
            f"副本 Replica `{_clean(replica, 64)}` 繼續使用上一個有效版本 keeps running the last "
            f"good rule set **{running}**.",
            "",
            "問題 Problems:",
            *shown,
            "",
            "修正後再儲存即可重新載入 · Fix and save the files to reload.",
        ]
    )
    return title, text


# -- rate limit + aggregation ---------------------------------------------------------------
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
        self._pending: list[tuple[T, asyncio.Future[int]]] = []
        self._next_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()
        self.last_used = clock()

    async def submit(self, item: T) -> int:
        """Queue ``item``; return the size of the batch it was delivered in."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self.last_used = self.clock()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        # Shielded: a cancelled caller (shutdown) must not cancel a send others wait on.
        return await asyncio.shield(future)

    async def flush(self) -> None:
        """Send whatever is held now, ignoring the interval (shutdown)."""
        self._hurry.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task

    @property
    def idle(self) -> bool:
        """Nothing held or being sent."""
        return not self._pending and (self._task is None or self._task.done())

    async def _run(self) -> None:
        while self._pending:
            delay = self._next_at - self.clock()
            if delay > 0 and not self._hurry.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), delay)
            batch, self._pending = self._pending, []
            self._next_at = self.clock() + self.interval
            try:
                await self._send([item for item, _ in batch])
            except Exception as error:  # noqa: BLE001  (handed to every waiting caller)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(len(batch))


class Notifier:
    """Warnings to groups and escalations to the compliance group, rate-limited and batched."""

    def __init__(
        self,
        client: OutboundClient,
        *,
        compliance_conversation_id: str,
        warn_interval: float,
        escalation_interval: float,
        metrics: Metrics,
    ) -> None:
        """One outbox per group for warnings; one for the compliance group."""
        self.client = client
        self.compliance_conversation_id = compliance_conversation_id
        self.warn_interval = warn_interval
        self.metrics = metrics
        self._groups: dict[str, Outbox[Notice]] = {}
        self._compliance: Outbox[Notice] = Outbox(self._send_escalations, escalation_interval)

    async def warn(self, notice: Notice) -> Delivery:
        """Warn in the message's group (sessionWebhook, else groupMessages/send)."""
        if not notice.conversation_id and not notice.session_webhook:
            return Delivery(ok=False, channel="none", batch=0, detail="no group to warn in")
        key = notice.conversation_id or notice.session_webhook
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
            log.error(
                "could not notify the compliance group",
                extra={"error": _describe(error), "stage": "notify"},
            )
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
                await self.client.reply_webhook(live[-1].session_webhook, title, text, at)
            except DingTalkError as error:
                if not notices[-1].conversation_id:
                    raise
                log.warning(
                    "sessionWebhook failed; falling back to groupMessages/send",
                    extra={"error": _describe(error), "stage": "notify"},
                )
            else:
                return
        conversation_id = notices[-1].conversation_id
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
