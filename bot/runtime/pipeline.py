"""The pipeline: one queued message, top to bottom: dedupe, screen, decide, record, act, release.

Read :meth:`Pipeline.handle` for what happens to one message. Every failure goes to the one
error funnel (:class:`bot.infra.supervisor.Supervisor`): counted by stage, logged by message
id and error type, never with the message text.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from bot.audit import AuditTrail
from bot.domain import Action, Decision, Message, Severity, Verdict
from bot.infra.backoff import Backoff
from bot.infra.health import Health
from bot.infra.metrics import Metrics
from bot.infra.queue import DurableQueue, Envelope, QueueItem, retried
from bot.infra.state import Claim, State
from bot.infra.supervisor import Supervisor
from bot.policy import decide
from bot.runtime.notices import HKT, Delivery, Notice, RuleNote
from bot.runtime.reload import RulesManager
from bot.runtime.rulesets import RuleSet
from bot.runtime.settings import Settings

log = logging.getLogger(__name__)
SCREENING_THREADS = 2  # one per core: regex, Aho-Corasick and spaCy release the GIL in part


class Notifications(Protocol):
    """What the pipeline needs from the notifier (bot.runtime.notifier; a fake in tests)."""

    async def warn(self, notice: Notice) -> Delivery:
        """Warn in the message's group."""
        ...

    async def escalate(self, notice: Notice) -> Delivery:
        """Open a case in the compliance group."""
        ...

    async def tell_compliance(self, title: str, text: str) -> bool:
        """An operational notice to the compliance group."""
        ...

    async def flush(self) -> None:
        """Send what the rate limits hold back now."""
        ...


@dataclass(frozen=True, slots=True)
class Screened:
    """One message after screening and the decision: what the rest of the pipeline acts on."""

    message: Message
    ruleset: RuleSet
    verdict: Verdict
    decision: Decision
    case_id: str


def case_id_for(message: Message, received_at: float) -> str:
    """A stable case id: the same message always gets the same id (replays, replicas)."""
    day = (message.sent_at or datetime.fromtimestamp(received_at, UTC)).astimezone(HKT)
    digest = hashlib.sha256(message.id.encode()).hexdigest()[:8].upper()
    return f"C{day:%Y%m%d}-{digest}"


def build_notice(screened: Screened, *, repost_redacted: bool) -> Notice:
    """What the notifier may know about a flagged message: rules and the masked copy."""
    verdict, decision = screened.verdict, screened.decision
    notes: dict[str, RuleNote] = {}
    for finding in verdict.findings:
        fallback = RuleNote(
            finding.rule_id, finding.title or finding.rule_id, finding.category, finding.severity
        )
        notes.setdefault(finding.rule_id, screened.ruleset.note(finding.rule_id, fallback))
    policy = screened.ruleset.screener.policy
    return Notice(
        message=screened.message,
        case_id=screened.case_id,
        rules=tuple(notes.values()),
        severity=verdict.severity or Severity.LOW,
        redacted=decision.masked
        if (Action.REDACT in decision.actions and repost_redacted)
        else None,
        escalation_text=decision.masked,
        strikes=decision.strikes,
        repeat_offender=decision.repeat_offender,
        repeat_window_minutes=policy.repeat_window_seconds // 60,
    )


class Pipeline:
    """Consumes the durable queue and handles each message once."""

    def __init__(
        self,
        *,
        settings: Settings,
        rules: RulesManager,
        state: State,
        queue: DurableQueue,
        notifier: Notifications,
        archive: AuditTrail,
        supervisor: Supervisor,
    ) -> None:
        """Wire the parts; nothing runs until :meth:`consume`."""
        self.settings = settings
        self.rules = rules
        self.state = state
        self.queue = queue
        self.notifier = notifier
        self.archive = archive
        self.supervisor = supervisor
        self.metrics: Metrics = supervisor.metrics
        self.health: Health = supervisor.health
        self.retry_backoff = Backoff(base=0.2, cap=30.0)
        # Screening is CPU-bound (regex, Aho-Corasick, spaCy): never on the event loop.
        self._screen_pool = ThreadPoolExecutor(SCREENING_THREADS, thread_name_prefix="screen")
        self._tasks: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self._stopping = False
        self.handled = 0  # messages acted on (screened, recorded, actions done)
        self.finished = 0  # handled plus duplicates skipped: queue entries released

    # -- intake: what a frame or an ingest request calls; returns once the message is durable
    async def accept(self, message: Message) -> str:
        """Put ``message`` in the durable queue (spilling to disk rather than failing)."""
        where = await self.queue.put(Envelope(message, time.time()))
        self.metrics.messages_in.labels(source=message.source).inc()
        return where

    def refuse_reason(self) -> str | None:
        """Why an HTTP client should back off now, if it should."""
        if self._stopping or self.health.stopping:
            return "shutting down"
        if self.health.queue_depth >= self.settings.queue_max_depth:
            return "queue full"
        return None

    # -- one message, top to bottom -------------------------------------------------------------
    async def handle(self, item: QueueItem) -> None:
        """Dedupe, screen, decide, record, act, then release the queue item."""
        envelope = item.envelope
        message = envelope.message

        # 1. Dedupe: redelivery, a second replica, a replay after a crash.
        claim = await self.state.claim(message.id)
        if claim is Claim.DONE:
            self.metrics.duplicates.inc()
            await self._release(item)
            return
        if claim is Claim.BUSY:  # another worker holds it; look again when its lease ends
            await self.queue.defer(item, self.settings.claim_idle_seconds)
            return

        # 2-4. Screen, count strikes, decide, and put it on record. A failure here retries
        # the whole message (nothing has been said in any chat yet).
        try:
            screened = await self._screen_and_decide(envelope)
            await self.archive.record_message(
                message,
                screened.verdict,
                screened.decision,
                case_id=screened.case_id,
                latency_ms=(time.time() - envelope.received_at) * 1000,
            )
        except Exception as error:  # noqa: BLE001  (the funnel reports it; the item is retried)
            await self._failed(item, "screen", error)
            return
        self._count(screened.verdict)

        # 5. Act: warn in the group, open a case for compliance. From here on the message is
        # on record; each action is tried (with retries) once and its outcome recorded.
        await self._act(screened)

        # 6. Done: later copies of this id are duplicates; the queue item can go.
        await self.state.mark_done(message.id)
        await self._release(item)
        self.handled += 1
        self.metrics.end_to_end_seconds.observe(max(0.0, time.time() - envelope.received_at))
        if screened.verdict.flagged:
            log.info(
                "message flagged",
                extra={
                    "message_id": message.id,
                    "source": message.source,
                    "case_id": screened.case_id,
                    "rules": sorted({f.rule_id for f in screened.verdict.findings}),
                    "actions": [a.value for a in screened.decision.actions],
                    "strikes": screened.decision.strikes,
                },
            )

    async def _screen_and_decide(self, envelope: Envelope) -> Screened:
        message = envelope.message
        ruleset = self.rules.current
        verdict = await self._screen(ruleset, message.text)
        for problem in verdict.errors:
            self.supervisor.note("screening", problem, message_id=message.id)
        policy = ruleset.screener.policy
        strikes = 0
        if verdict.flagged:
            strikes = await self.state.add_strike(
                message.sender_id or message.conversation_id or "unknown",
                message.id,
                policy.repeat_window_seconds,
            )
        decision = decide(verdict, message.text, policy, strikes=strikes)
        case_id = case_id_for(message, envelope.received_at)
        return Screened(message, ruleset, verdict, decision, case_id)

    async def _screen(self, ruleset: RuleSet, text: str) -> Verdict:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        verdict = await loop.run_in_executor(self._screen_pool, ruleset.screener.screen, text)
        self.metrics.screening_seconds.observe(time.perf_counter() - started)
        return verdict

    def _count(self, verdict: Verdict) -> None:
        outcome = "flagged" if verdict.flagged else "clean"
        self.metrics.messages_screened.labels(outcome=outcome).inc()
        for finding in verdict.findings:
            self.metrics.findings.labels(category=finding.category.value).inc()

    async def _release(self, item: QueueItem) -> None:
        await self.queue.ack(item)
        self.finished += 1

    # -- actions ----------------------------------------------------------------------------------
    async def _act(self, screened: Screened) -> None:
        actions = screened.decision.actions
        if not screened.verdict.flagged or not {Action.WARN, Action.ESCALATE} & set(actions):
            return
        notice = build_notice(screened, repost_redacted=self.settings.repost_redacted)
        wanted = [a for a in (Action.WARN, Action.ESCALATE) if a in actions]
        sends = [
            self.notifier.warn if a is Action.WARN else self.notifier.escalate for a in wanted
        ]
        results = await asyncio.gather(*(send(notice) for send in sends), return_exceptions=True)
        for action, result in zip(wanted, results, strict=True):
            delivery = (
                Delivery(ok=False, channel="error", detail=type(result).__name__)
                if isinstance(result, BaseException)
                else result
            )
            await self._record_action(screened, action, delivery)

    async def _record_action(self, screened: Screened, action: Action, delivery: Delivery) -> None:
        message = screened.message
        outcome = (
            "sent" if delivery.ok else ("skipped" if delivery.channel == "none" else "failed")
        )
        self.metrics.actions.labels(action=action.value, outcome=outcome).inc()
        if not delivery.ok:
            log.error(
                "action not delivered",
                extra={
                    "message_id": message.id,
                    "case_id": screened.case_id,
                    "actions": action.value,
                    "reason": delivery.detail,
                },
            )
        detail = delivery.detail or f"{delivery.channel}; batch of {delivery.batch}"
        try:
            await self.archive.record_action(
                message, action, case_id=screened.case_id, outcome=outcome, detail=detail
            )
        except Exception as error:  # noqa: BLE001  (funnelled; the action itself happened)
            self.supervisor.report("audit-action", error, message_id=message.id)

    # -- failures ---------------------------------------------------------------------------------
    async def _failed(self, item: QueueItem, stage: str, error: BaseException) -> None:
        """Retry later, or after the last attempt move to dead letters and tell compliance."""
        message = item.envelope.message
        self.supervisor.report(stage, error, message_id=message.id)
        with contextlib.suppress(Exception):
            await self.state.release(message.id)
        attempts = item.envelope.attempts + 1
        try:
            if attempts < self.settings.max_attempts:
                await asyncio.sleep(self.retry_backoff.delay(attempts))
                await self.queue.requeue(item, retried(item.envelope))
                return
            await self.queue.bury(item, f"{stage}: {type(error).__name__}")
        except Exception as queue_error:  # noqa: BLE001  (the item stays put, is re-delivered)
            self.supervisor.report("queue", queue_error, message_id=message.id)
            return
        self.metrics.dead_letters.inc()
        await self.notifier.tell_compliance(
            "訊息無法處理 Message not processed",
            "\n".join(
                [
                    "#### ⛔ 訊息無法處理 Message could not be processed",
                    f"- message id: `{message.id}` · source: {message.source}",
                    f"- group: `{message.conversation_id or '-'}`",
                    f"- stage: {stage} · error: {type(error).__name__} · attempts: {attempts}",
                    "已移至待處理區 Moved to the dead-letter store for an operator.",
                ]
            ),
        )

    # -- the consumer loop ------------------------------------------------------------------------
    async def consume(self) -> None:
        """Fetch and handle items, at most ``max_in_flight`` at a time, until stopped."""
        self.health.consumer_alive = True
        try:
            while not self._stopping:
                free = self.settings.max_in_flight - len(self._tasks)
                if free <= 0:
                    self._slot_freed.clear()
                    await self._slot_freed.wait()
                    continue
                try:
                    items = await self.queue.fetch(min(free, 256), wait=0.5)
                except Exception as error:  # noqa: BLE001  (funnelled; the loop must go on)
                    self.supervisor.report("fetch", error)
                    await asyncio.sleep(0.5)
                    continue
                for item in items:
                    self._start(item)
        finally:
            self.health.consumer_alive = False

    def _start(self, item: QueueItem) -> None:
        task = asyncio.get_running_loop().create_task(self._guarded(item))
        self._tasks.add(task)
        self.metrics.in_flight.set(len(self._tasks))

        def done(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            self.metrics.in_flight.set(len(self._tasks))
            self._slot_freed.set()

        task.add_done_callback(done)

    async def _guarded(self, item: QueueItem) -> None:
        try:
            await self.handle(item)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001  (one bad message never stops the loop)
            self.supervisor.report("handle", error, message_id=item.envelope.message.id)
            # Not acknowledged: make sure it comes back (SQLite only re-reads it when told).
            with contextlib.suppress(Exception):
                await self.queue.defer(item, 5.0)

    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109  (a budget, not a cancel)
        """Stop fetching; let messages in flight finish (rate-limited sends go out now)."""
        self._stopping = True
        self._slot_freed.set()
        deadline = time.monotonic() + timeout
        while self._tasks and time.monotonic() < deadline:
            await self.notifier.flush()
            await asyncio.wait(list(self._tasks), timeout=min(0.5, deadline - time.monotonic()))
        left = len(self._tasks)
        for task in list(self._tasks):
            task.cancel()  # their items stay unacknowledged and are handled after a restart
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._screen_pool.shutdown(wait=False, cancel_futures=True)
        if left:
            log.error("drain timed out; unfinished messages stay queued", extra={"count": left})
        return left == 0


__all__ = ["Pipeline", "Screened", "build_notice", "case_id_for"]
