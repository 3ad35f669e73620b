"""The bot: accept, queue, dedupe, screen, decide, record, act; one error funnel; lifecycle.

Read :meth:`Pipeline.handle` top to bottom for what happens to one message, and
:class:`Bot` for start-up and the ordered shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
from aiohttp import web

from bot.dingtalk.openapi import OutboundClient, RetryPolicy
from bot.domain import Action, Category, Message, Severity, Verdict
from bot.engine.redaction import redact
from bot.infra.ops import Health, Metrics, add_routes, scrub_sdk_loggers
from bot.infra.queue import (
    DurableQueue,
    Entry,
    Envelope,
    FailoverQueue,
    RedisQueue,
    SqliteQueue,
    retried,
)
from bot.infra.state import (
    REDIS_DOWN,
    Claim,
    FailoverState,
    MemoryState,
    RedisLink,
    RedisState,
    State,
    connect_redis,
)
from bot.runtime.ingest import Ingest
from bot.runtime.notify import HKT, Delivery, Notice, Notifier, RuleNote
from bot.runtime.reload import RuleSet, RulesManager
from bot.runtime.settings import ConfigError, Settings, describe

if TYPE_CHECKING:
    from bot.dingtalk.intake import StreamIntake

log = logging.getLogger(__name__)


# -- the archive the pipeline writes to (bot.audit provides the real one) ---------------------
class Archive(Protocol):
    """Where every message, verdict and action is recorded."""

    async def record_message(
        self,
        message: Message,
        verdict: Verdict,
        *,
        case_id: str,
        actions: Sequence[Action],
        strikes: int,
        latency_ms: float,
    ) -> None:
        """Record the message (original text; the archive encrypts it) and its verdict."""
        ...

    async def record_action(
        self, message: Message, action: Action, *, case_id: str, outcome: str, detail: str
    ) -> None:
        """Record one action taken (or failed) for a message."""
        ...


@dataclass(slots=True)
class MemoryArchive:
    """An archive in memory: tests, the demo, and a bot started without an audit store."""

    messages: list[tuple[Message, Verdict, str, tuple[Action, ...], int]] = field(
        default_factory=list
    )
    actions: list[tuple[str, Action, str, str, str]] = field(default_factory=list)

    async def record_message(
        self,
        message: Message,
        verdict: Verdict,
        *,
        case_id: str,
        actions: Sequence[Action],
        strikes: int,
        latency_ms: float,
    ) -> None:
        """See :meth:`Archive.record_message`."""
        del latency_ms
        self.messages.append((message, verdict, case_id, tuple(actions), strikes))

    async def record_action(
        self, message: Message, action: Action, *, case_id: str, outcome: str, detail: str
    ) -> None:
        """See :meth:`Archive.record_action`."""
        self.actions.append((message.id, action, case_id, outcome, detail))


class AuditArchive:
    """bot.audit's archive behind the pipeline's interface.

    Record keys are derived from the message id (``message:<id>``, ``action:<id>:warn:sent``),
    so a message replayed after a crash adds nothing twice to the hash chain.
    """

    def __init__(self, writer: Any) -> None:
        """``writer`` is a ``bot.audit.AsyncArchive`` or ``RedisArchiveSink`` (``record``)."""
        self.writer = writer

    async def record_message(
        self,
        message: Message,
        verdict: Verdict,
        *,
        case_id: str,
        actions: Sequence[Action],
        strikes: int,
        latency_ms: float,
    ) -> None:
        """See :meth:`Archive.record_message`: the message, then the decision taken on it."""
        from bot.audit.writer import action_entry, message_entry  # noqa: PLC0415

        decision = {
            "case_id": case_id,
            "actions": [a.value for a in actions],
            "strikes": strikes,
            "rules_version": verdict.rules_version,
        }
        await self.writer.record(
            [
                message_entry(message, verdict, screened_at=time.time(), latency_ms=latency_ms),
                action_entry(message, "decision", "recorded", decision, key="decision"),
            ]
        )

    async def record_action(
        self, message: Message, action: Action, *, case_id: str, outcome: str, detail: str
    ) -> None:
        """See :meth:`Archive.record_action`."""
        from bot.audit.writer import action_entry  # noqa: PLC0415

        entry = action_entry(
            message,
            action.value,
            outcome,
            {"case_id": case_id, "detail": detail},
            # One record per action and outcome: a replay after a crash adds nothing, but a
            # failure followed by a later success is kept as both.
            key=f"{action.value}:{outcome}",
        )
        await self.writer.record([entry])


class DiscardArchive:
    """No archive (``audit.sink = none``): records are dropped, which start-up logs loudly."""

    async def record_message(
        self,
        message: Message,
        verdict: Verdict,
        *,
        case_id: str,
        actions: Sequence[Action],
        strikes: int,
        latency_ms: float,
    ) -> None:
        """Discard."""

    async def record_action(
        self, message: Message, action: Action, *, case_id: str, outcome: str, detail: str
    ) -> None:
        """Discard."""


# -- decisions (pure) -----------------------------------------------------------------------
def case_id_for(message: Message, received_at: float) -> str:
    """A stable case id: the same message always gets the same id (replays, replicas)."""
    day = (message.sent_at or datetime.fromtimestamp(received_at, UTC)).astimezone(HKT)
    digest = hashlib.sha256(message.id.encode()).hexdigest()[:8].upper()
    return f"C{day:%Y%m%d}-{digest}"


def decide(verdict: Verdict, strikes: int, ruleset: RuleSet) -> tuple[tuple[Action, ...], bool]:
    """The verdict's actions, plus the repeat-offender action when the sender is over the line."""
    policy = ruleset.screener.policy
    actions = dict.fromkeys(verdict.actions)
    repeat = verdict.flagged and strikes >= policy.repeat_threshold
    if repeat:
        actions[policy.repeat_action] = None
    return tuple(a for a in Action if a in actions), repeat


def masked_copy(text: str, verdict: Verdict) -> str:
    """The verdict's redacted text with every personal-data finding masked too.

    Masking keeps length, so finding offsets still apply to the redacted text; a personal-
    data finding from a rule without a ``redact`` spec is masked entirely.
    """
    extra = [
        (f.start, f.end, 0, 0)
        for f in verdict.findings
        if f.category is Category.PII and not f.redact
    ]
    base = verdict.redacted if len(verdict.redacted) == len(text) else text
    return redact(base, extra) if extra else base


def build_notice(
    message: Message,
    verdict: Verdict,
    ruleset: RuleSet,
    *,
    case_id: str,
    strikes: int,
    repeat: bool,
    repost_redacted: bool,
    actions: Sequence[Action],
) -> Notice:
    """What the notifier may know about a flagged message (no raw text)."""
    notes: dict[str, RuleNote] = {}
    for finding in verdict.findings:
        fallback = RuleNote(
            finding.rule_id, finding.title or finding.rule_id, finding.category, finding.severity
        )
        notes.setdefault(finding.rule_id, ruleset.note(finding.rule_id, fallback))
    masked = masked_copy(message.text, verdict)
    window = ruleset.screener.policy.repeat_window_seconds // 60
    return Notice(
        message_id=message.id,
        case_id=case_id,
        sender_id=message.sender_id,
        sender_name=message.sender_name,
        sender_staff_id=message.sender_staff_id,
        conversation_id=message.conversation_id,
        conversation_title=message.conversation_title,
        source=message.source,
        sent_at=message.sent_at,
        session_webhook=message.session_webhook,
        rules=tuple(notes.values()),
        severity=verdict.severity or Severity.LOW,
        redacted=masked if (Action.REDACT in actions and repost_redacted) else None,
        escalation_text=masked,
        strikes=strikes,
        repeat_offender=repeat,
        repeat_window_minutes=window,
    )


# -- the pipeline ---------------------------------------------------------------------------
class Pipeline:
    """Consumes the durable queue and handles each message once."""

    def __init__(
        self,
        *,
        settings: Settings,
        rules: RulesManager,
        state: State,
        queue: DurableQueue,
        notifier: Notifier,
        archive: Archive,
        metrics: Metrics,
        health: Health,
    ) -> None:
        """Wire the parts; nothing runs until :meth:`consume`."""
        self.settings = settings
        self.rules = rules
        self.state = state
        self.queue = queue
        self.notifier = notifier
        self.archive = archive
        self.metrics = metrics
        self.health = health
        # Screening is CPU-bound (regex, Aho-Corasick, spaCy): never on the event loop.
        self._screen_pool = ThreadPoolExecutor(2, thread_name_prefix="screen")
        self._tasks: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self._stopping = False
        self.handled = 0  # messages acted on (screened, recorded, actions done)
        self.finished = 0  # handled plus duplicates skipped: queue entries released

    # -- intake: what a frame or an ingest request calls; returns once the message is durable
    async def accept(self, message: Message) -> str:
        """Put ``message`` in the durable queue (spilling to disk rather than failing)."""
        where = await self.queue.put(Envelope(message, time.time()))
        self.metrics.messages_in.inc(source=message.source)
        return where

    def refuse_reason(self) -> str | None:
        """Why an HTTP client should back off now, if it should."""
        if self._stopping or self.health.stopping:
            return "shutting down"
        if self.health.queue_depth >= self.settings.queue_max_depth:
            return "queue full"
        return None

    # -- one message, top to bottom -----------------------------------------------------------
    async def handle(self, entry: Entry) -> None:
        """Dedupe, screen, decide, record, act, then release the queue entry."""
        envelope = entry.envelope
        message = envelope.message

        # 1. Dedupe: redelivery, a second replica, a replay after a crash.
        claim = await self.state.claim(message.id)
        if claim is Claim.DONE:
            self.metrics.duplicates.inc()
            await self.queue.ack(entry)
            self.finished += 1
            return
        if claim is Claim.BUSY:  # another worker holds it; look again when its lease ends
            await self.queue.defer(entry, self.settings.claim_idle_seconds)
            return

        # 2-4. Screen, count strikes, decide, and put it on record. A failure here retries
        # the whole message (nothing has been said in any chat yet).
        try:
            ruleset = self.rules.current
            verdict = await self._screen(ruleset, message.text)
            strikes = 0
            if verdict.flagged:
                policy = ruleset.screener.policy
                strikes = await self.state.add_strike(
                    message.sender_id or message.conversation_id or "unknown",
                    message.id,
                    policy.repeat_window_seconds,
                )
            actions, repeat = decide(verdict, strikes, ruleset)
            case_id = case_id_for(message, envelope.received_at)
            await self.archive.record_message(
                message,
                verdict,
                case_id=case_id,
                actions=actions,
                strikes=strikes,
                latency_ms=(time.time() - envelope.received_at) * 1000,
            )
        except Exception as error:  # noqa: BLE001  (the funnel logs it; the entry is retried)
            await self._failed(entry, "screen", error)
            return
        self._count(verdict)

        # 5. Act: warn in the group, open a case for compliance. From here on the message
        # is on record; each action is tried (with retries) once and its outcome recorded.
        deliveries: list[tuple[Action, Delivery]] = []
        if verdict.flagged and (Action.WARN in actions or Action.ESCALATE in actions):
            notice = build_notice(
                message,
                verdict,
                ruleset,
                case_id=case_id,
                strikes=strikes,
                repeat=repeat,
                repost_redacted=self.settings.repost_redacted,
                actions=actions,
            )
            deliveries = await self._act(notice, actions)
        for action, delivery in deliveries:
            outcome = (
                "sent" if delivery.ok else ("skipped" if delivery.channel == "none" else "failed")
            )
            self.metrics.actions.inc(action=action.value, outcome=outcome)
            if not delivery.ok:
                log.error(
                    "action not delivered",
                    extra={
                        "message_id": message.id,
                        "case_id": case_id,
                        "actions": action.value,
                        "reason": delivery.detail,
                    },
                )
            await self._record_action(message, action, case_id, outcome, delivery)

        # 6. Done: later copies of this id are duplicates; the queue entry can go.
        await self.state.mark_done(message.id)
        await self.queue.ack(entry)
        self.handled += 1
        self.finished += 1
        self.metrics.end_to_end_seconds.observe(max(0.0, time.time() - envelope.received_at))
        if verdict.flagged:
            log.info(
                "message flagged",
                extra={
                    "message_id": message.id,
                    "source": message.source,
                    "case_id": case_id,
                    "rules": sorted({f.rule_id for f in verdict.findings}),
                    "actions": [a.value for a in actions],
                    "strikes": strikes,
                },
            )

    async def _screen(self, ruleset: RuleSet, text: str) -> Verdict:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        verdict = await loop.run_in_executor(self._screen_pool, ruleset.screener.screen, text)
        self.metrics.screening_seconds.observe(time.perf_counter() - started)
        return verdict

    def _count(self, verdict: Verdict) -> None:
        self.metrics.messages_screened.inc(outcome="flagged" if verdict.flagged else "clean")
        for finding in verdict.findings:
            self.metrics.findings.inc(category=finding.category.value)

    async def _act(
        self, notice: Notice, actions: Sequence[Action]
    ) -> list[tuple[Action, Delivery]]:
        jobs: list[tuple[Action, asyncio.Future[Delivery]]] = []
        if Action.WARN in actions:
            jobs.append((Action.WARN, asyncio.ensure_future(self.notifier.warn(notice))))
        if Action.ESCALATE in actions:
            jobs.append((Action.ESCALATE, asyncio.ensure_future(self.notifier.escalate(notice))))
        results = await asyncio.gather(*(job for _, job in jobs), return_exceptions=True)
        out = []
        for (action, _), result in zip(jobs, results, strict=True):
            if isinstance(result, BaseException):
                result = Delivery(ok=False, channel="error", detail=type(result).__name__)
            out.append((action, result))
        return out

    async def _record_action(
        self, message: Message, action: Action, case_id: str, outcome: str, delivery: Delivery
    ) -> None:
        detail = delivery.detail or f"{delivery.channel}; batch of {delivery.batch}"
        try:
            await self.archive.record_action(
                message, action, case_id=case_id, outcome=outcome, detail=detail
            )
        except Exception as error:  # noqa: BLE001  (funnelled; the action itself happened)
            self._funnel("audit-action", error, message)

    # -- the error funnel -----------------------------------------------------------------------
    def _funnel(self, stage: str, error: BaseException, message: Message | None) -> None:
        """Every error ends here: counted, logged by id and type (never the message text)."""
        self.metrics.errors.inc(stage=stage)
        log.error(
            "pipeline error",
            extra={
                "stage": stage,
                "error": type(error).__name__,
                "message_id": message.id if message else None,
            },
            exc_info=not isinstance(error, REDIS_DOWN),
        )

    async def _failed(self, entry: Entry, stage: str, error: BaseException) -> None:
        """Retry later, or after the last attempt move to dead letters and tell compliance."""
        message = entry.envelope.message
        self._funnel(stage, error, message)
        with contextlib.suppress(Exception):
            await self.state.release(message.id)
        attempts = entry.envelope.attempts + 1
        try:
            if attempts < self.settings.max_attempts:
                await asyncio.sleep(min(30.0, 0.2 * 2**attempts))
                await self.queue.requeue(entry, retried(entry.envelope))
                return
            await self.queue.bury(entry, f"{stage}: {type(error).__name__}")
        except Exception as queue_error:  # noqa: BLE001  (entry stays put and is re-delivered)
            self._funnel("queue", queue_error, message)
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

    # -- the consumer loop ------------------------------------------------------------------
    async def consume(self) -> None:
        """Fetch and handle entries, at most ``max_in_flight`` at a time, until stopped."""
        self.health.consumer_alive = True
        try:
            while not self._stopping:
                free = self.settings.max_in_flight - len(self._tasks)
                if free <= 0:
                    self._slot_freed.clear()
                    await self._slot_freed.wait()
                    continue
                try:
                    entries = await self.queue.fetch(min(free, 256), wait=0.5)
                except Exception as error:  # noqa: BLE001  (funnelled; the loop must go on)
                    self._funnel("fetch", error, None)
                    await asyncio.sleep(0.5)
                    continue
                for entry in entries:
                    self._start(entry)
        finally:
            self.health.consumer_alive = False

    def _start(self, entry: Entry) -> None:
        task = asyncio.get_running_loop().create_task(self._guarded(entry))
        self._tasks.add(task)
        self.metrics.in_flight.set(len(self._tasks))

        def done(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            self.metrics.in_flight.set(len(self._tasks))
            self._slot_freed.set()

        task.add_done_callback(done)

    async def _guarded(self, entry: Entry) -> None:
        try:
            await self.handle(entry)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001  (one bad message never stops the loop)
            self._funnel("handle", error, entry.envelope.message)
            # Not acknowledged: make sure it comes back (SQLite only re-reads it when told).
            with contextlib.suppress(Exception):
                await self.queue.defer(entry, 5.0)

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
            task.cancel()  # their entries stay unacknowledged and are handled after restart
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._screen_pool.shutdown(wait=False, cancel_futures=True)
        if left:
            log.error("drain timed out; unfinished messages stay queued", extra={"count": left})
        return left == 0


# -- lifecycle ----------------------------------------------------------------------------------
class Bot:
    """Start-up and shutdown as an ordered stack, torn down in reverse.

    Shutdown order: stop the stream (frames in flight still get their ACK), refuse ingest,
    drain the pipeline, then close HTTP, outbound sessions, queue and Redis.
    """

    def __init__(self, settings: Settings, *, archive: Archive | None = None) -> None:
        """Nothing starts until :meth:`start`."""
        self.settings = settings
        self.metrics = Metrics()
        self.health = Health(settings.replica_id)
        self.archive: Archive = archive if archive is not None else DiscardArchive()
        self._open_audit = archive is None
        self.stack = AsyncExitStack()
        self.pipeline: Pipeline | None = None
        self.intake: StreamIntake | None = None
        self.rules: RulesManager | None = None
        self.redis_link: RedisLink | None = None
        self.queue: DurableQueue | None = None
        self.http_port = 0
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Bring everything up; raises ConfigError (naming the setting) or RulebookError."""
        try:
            await self._start()
        except BaseException:
            await self.stack.aclose()
            raise

    async def _start(self) -> None:
        s = self.settings
        scrub_sdk_loggers()
        log.info("starting", extra={"settings": describe(s)})
        data_dir = s.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)

        # Rules first: a broken rule set stops start-up before anything connects.
        self.rules = RulesManager(
            s.rules_dir,
            metrics=self.metrics,
            health=self.health,
            replica_id=s.replica_id,
            work_dir=data_dir / "rules-received",
            ner=s.rules_ner,
        )
        await self.rules.load_initial()
        self.stack.push_async_callback(self.rules.close)

        # State and the durable queue: Redis when configured, else SQLite on local disk.
        state: State
        queue: DurableQueue
        if s.redis_url:
            client = connect_redis(s.redis_url)
            self.stack.push_async_callback(client.aclose)
            try:
                await client.ping()
            except REDIS_DOWN as error:
                raise ConfigError(
                    "BOT_REDIS_URL", f"Redis does not answer ({type(error).__name__})"
                ) from None
            self.health.redis_configured = True
            link = self.redis_link = RedisLink(client, self.metrics, self.health)
            self.stack.push_async_callback(link.close)
            memory = MemoryState(
                lease_seconds=s.claim_idle_seconds, done_ttl_seconds=s.dedupe_ttl_seconds
            )
            redis_state = RedisState(
                client,
                prefix=s.key_prefix,
                replica_id=s.replica_id,
                lease_seconds=s.claim_idle_seconds,
                done_ttl_seconds=s.dedupe_ttl_seconds,
            )
            state = FailoverState(redis_state, memory, link)
            primary = RedisQueue(
                client,
                prefix=s.key_prefix,
                consumer=s.replica_id,
                claim_idle_seconds=s.claim_idle_seconds,
            )
            await primary.ensure_group()
            spill = await SqliteQueue(data_dir / "spill.sqlite3", name="spill").open()
            self.stack.push_async_callback(spill.close)
            queue = FailoverQueue(
                primary, spill, link, self.metrics, put_timeout=s.accept_timeout_seconds
            )
            self.rules.attach(client, s.key_prefix)
        else:
            state = MemoryState(
                lease_seconds=s.claim_idle_seconds, done_ttl_seconds=s.dedupe_ttl_seconds
            )
            local = await SqliteQueue(data_dir / "queue.sqlite3").open()
            self.stack.push_async_callback(local.close)
            queue = local
        self.queue = queue
        self.health.queue_max = s.queue_max_depth
        if self._open_audit:
            self.archive = await self._audit(client if s.redis_url else None)

        # Outbound: our own aiohttp client; the token is fetched now, so wrong credentials
        # stop start-up with a message naming them.
        session = aiohttp.ClientSession()
        self.stack.push_async_callback(session.close)
        client_out = OutboundClient(
            session,
            endpoint=s.openapi_endpoint,
            client_id=s.client_id,
            client_secret=s.client_secret,
            robot_code=s.effective_robot_code,
            metrics=self.metrics,
            policy=RetryPolicy(
                attempts=s.outbound_attempts,
                timeout=s.outbound_timeout_seconds,
                base=s.backoff_base_seconds,
                cap=s.backoff_max_seconds,
            ),
            webhook_hosts=s.allowed_webhook_hosts,
        )
        if s.client_id and s.client_secret:
            await client_out.check_credentials()
        notifier = Notifier(
            client_out,
            compliance_conversation_id=s.compliance_conversation_id,
            warn_interval=s.warn_interval_seconds,
            escalation_interval=s.escalation_interval_seconds,
            metrics=self.metrics,
        )
        self.rules.tell_compliance = notifier.tell_compliance

        pipeline = self.pipeline = Pipeline(
            settings=s,
            rules=self.rules,
            state=state,
            queue=queue,
            notifier=notifier,
            archive=self.archive,
            metrics=self.metrics,
            health=self.health,
        )

        # HTTP: health, metrics, ingest.
        web_app = web.Application(client_max_size=16 * 1024 * 1024)
        add_routes(web_app, self.health, self.metrics)
        Ingest(
            token=s.ingest_token,
            accept=pipeline.accept,
            refuse=pipeline.refuse_reason,
            metrics=self.metrics,
        ).add_routes(web_app)
        runner = web.AppRunner(web_app, access_log=None, handle_signals=False)
        await runner.setup()
        self.stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, s.http_host, s.http_port)
        await site.start()
        self.http_port = _bound_port(runner, s.http_port)

        # Background work; drained (pipeline) and cancelled (the rest) in reverse order.
        self.stack.push_async_callback(self._cancel_tasks)
        self.stack.push_async_callback(self._drain)
        self._spawn(pipeline.consume(), "consumer", essential=True)
        self._spawn(self._sample_depth(), "depth")
        self._spawn(self.rules.watch(s.rules_poll_seconds), "rules-watch")
        if self.rules.redis is not None:
            self._spawn(self.rules.subscribe(), "rules-subscribe")

        # Intake last: frames are only ACKed once everything behind them is up.
        if s.stream_enabled:
            from bot.dingtalk.intake import StreamIntake  # noqa: PLC0415  (the SDK import, only when used)

            self.intake = StreamIntake(
                client_id=s.client_id,
                client_secret=s.client_secret,
                endpoint=s.openapi_endpoint,
                accept=self._accept_frame,
                metrics=self.metrics,
                health=self.health,
                accept_timeout=s.accept_timeout_seconds + 1.0,
                reconnect_max=s.reconnect_max_seconds,
            )
            self.health.stream_required = True
            self.intake.start()
            self.stack.push_async_callback(self.intake.stop)
        log.info(
            "bot running",
            extra={"version": self.rules.current.version, "replica": s.replica_id},
        )

    async def _audit(self, redis: Any) -> Archive:
        """The audit archive the settings ask for (bot.audit); a missing key stops start-up."""
        s = self.settings
        if s.audit_sink == "none":
            log.warning("audit archive disabled (audit.sink = none): nothing is recorded")
            return DiscardArchive()
        from bot.audit import (  # noqa: PLC0415  (optional feature package)
            ArchiveKeyError,
            Archiver,
            AsyncArchive,
            RedisArchiveSink,
            open_archive,
        )
        from bot.audit.keys import load_from_environment  # noqa: PLC0415

        try:
            ring = load_from_environment()
        except ArchiveKeyError as error:
            raise ConfigError("BOT_ARCHIVE_KEY_FILE", str(error)) from None
        if s.audit_sink == "redis":
            if s.audit_archiver:
                store = await asyncio.to_thread(open_archive, None, ring)
                self.stack.callback(store.close)
                archiver = Archiver(redis, store, consumer=s.replica_id)
                self._spawn(_archive_forever(archiver), "archiver")
            return AuditArchive(RedisArchiveSink(redis, ring))
        writer = AsyncArchive(await asyncio.to_thread(open_archive, None, ring))
        self.stack.push_async_callback(asyncio.to_thread, writer.close)
        return AuditArchive(writer)

    async def _accept_frame(self, message: Message) -> None:
        assert self.pipeline is not None  # noqa: S101
        await self.pipeline.accept(message)

    def _spawn(self, coro: object, name: str, *, essential: bool = False) -> None:
        async def supervised() -> None:
            try:
                await coro  # type: ignore[misc]
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.exception("background task died", extra={"stage": name})
                if essential:
                    self.health.fatal = f"{name}: {type(error).__name__}"

        self._tasks.append(asyncio.get_running_loop().create_task(supervised(), name=name))

    async def _sample_depth(self) -> None:
        assert self.queue is not None  # noqa: S101
        while True:
            try:
                depth = await self.queue.depth()
            except Exception:  # noqa: BLE001  (a missed sample; the next one will do)
                depth = self.health.queue_depth
            self.health.queue_depth = depth
            self.metrics.queue_depth.set(depth)
            await asyncio.sleep(0.5)

    async def _drain(self) -> None:
        self.health.stopping = True
        if self.pipeline is not None:
            await self.pipeline.drain(self.settings.drain_seconds)
            await self.pipeline.notifier.flush()

    async def _cancel_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def stop(self) -> None:
        """Ordered shutdown (see the class docstring)."""
        self.health.stopping = True
        await self.stack.aclose()
        log.info("stopped")


async def _archive_forever(archiver: Any) -> None:
    while True:
        try:
            await archiver.run_once(block_ms=1000)
        except REDIS_DOWN:
            await asyncio.sleep(1.0)


def _bound_port(runner: web.AppRunner, configured: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return configured


async def run(settings: Settings, *, archive: Archive | None = None) -> int:
    """Run until SIGTERM/SIGINT; SIGHUP reloads the rules. Returns the exit status."""
    bot = Bot(settings, archive=archive)
    await bot.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if bot.rules is not None:
        rules = bot.rules
        loop.add_signal_handler(signal.SIGHUP, rules.request_reload, "signal")
    try:
        await stop.wait()
    finally:
        log.info("shutting down", extra={"reason": "signal"})
        await bot.stop()
    return 0
