"""What a warning or escalation says: the notice (no raw text) and its bilingual markdown.

Rendering never sees the message text: a warning is built from rule titles and messages,
an escalation from the masked copy, so personal data found in a message cannot be echoed
into a chat (PCPD code on ID numbers; never an HKID beside a name).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from bot.domain import Category, Message, Severity

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
    """One flagged message as the notifier sees it: who, where, which rules, the masked copy.

    ``message`` carries the raw text too, but no rendering function reads ``message.text``:
    chats only ever see ``redacted`` and ``escalation_text`` (tests check both directions).
    """

    message: Message
    case_id: str
    rules: tuple[RuleNote, ...]
    severity: Severity
    redacted: str | None  # masked copy for the group, only when the policy asks for one
    escalation_text: str = ""  # masked copy for the compliance group (always masked)
    strikes: int = 0
    repeat_offender: bool = False
    repeat_window_minutes: int = 0

    def webhook_alive(self, now: datetime) -> bool:
        """Whether the sessionWebhook can still be used."""
        if not self.message.session_webhook:
            return False
        if self.message.sent_at is None:
            return True
        return now < self.message.sent_at + SESSION_WEBHOOK_LIFETIME - WEBHOOK_MARGIN


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
        f"@{notice.message.sender_staff_id}"
        if notice.message.sender_staff_id
        else f"**{_clean(notice.message.sender_name)}**"
    )


def render_warning(notices: Sequence[Notice], window_seconds: float) -> tuple[str, str, list[str]]:
    """(title, markdown, staff ids to @-mention) for one group; one notice or a summary."""
    title = "合規提示 Compliance notice"
    at = sorted({n.message.sender_staff_id for n in notices if n.message.sender_staff_id})[:MAX_AT]
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
    message = notice.message
    when = (message.sent_at or datetime.now(UTC)).astimezone(HKT).strftime("%Y-%m-%d %H:%M:%S HKT")
    group = _clean(message.conversation_title or "-")
    return [
        heading,
        f"- **嚴重程度 Severity:** {SEVERITY_WORDS[notice.severity]}",
        f"- **發送者 Sender:** {_clean(message.sender_name)} ({_clean(message.sender_id, 64)})",
        f"- **群組 Group:** {group} ({_clean(message.conversation_id or '-', 64)})",
        f"- **規則 Rules:** {rules}",
        f"- **原因 Reason:** {reason}",
        f"- **時間 Time:** {when} · **來源 Source:** {message.source}",
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
