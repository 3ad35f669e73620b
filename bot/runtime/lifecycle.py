"""Start-up and shutdown of a replica: an ordered stack of steps, torn down in reverse; ``run``.

Start-up order (each step in its own method, read top to bottom in :meth:`Bot._start`):
rules, state and queue, archive, DingTalk client and notifier, pipeline, HTTP, background
tasks, and the stream intake last, so frames are only ACKed once everything behind them is up.
Shutdown runs the same stack backwards: stop the stream (frames in flight still get their
ACK), refuse ingest, drain the pipeline, then close HTTP, outbound sessions, queue and Redis.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import AsyncExitStack
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

from bot.audit import (
    ArchiveKeyError,
    Archiver,
    AsyncArchive,
    AuditTrail,
    DiscardAuditTrail,
    RedisArchiveSink,
    SinkAuditTrail,
    load_from_environment,
    open_archive,
)
from bot.dingtalk.intake import StreamIntake
from bot.dingtalk.openapi import OutboundClient, RetryPolicy
from bot.domain import Message
from bot.infra.backoff import Backoff
from bot.infra.errors import ConfigError
from bot.infra.health import Health
from bot.infra.logs import scrub_sdk_loggers
from bot.infra.metrics import Metrics
from bot.infra.queue import DurableQueue
from bot.infra.queue.failover import FailoverQueue
from bot.infra.queue.redis_stream import RedisQueue
from bot.infra.queue.sqlite import SqliteQueue
from bot.infra.redis_link import REDIS_DOWN, RedisLink, connect_redis
from bot.infra.state import FailoverState, MemoryState, RedisState, State
from bot.infra.supervisor import Supervisor
from bot.runtime.http import build_app
from bot.runtime.ingest import Ingest
from bot.runtime.notifier import Notifier
from bot.runtime.pipeline import Pipeline
from bot.runtime.reload import RulesManager
from bot.runtime.settings import Settings, describe

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Storage:
    """Where dedupe state and the durable queue live (Redis, or local SQLite)."""

    state: State
    queue: DurableQueue
    redis: Redis | None


class Bot:
    """One replica: its parts, started in order and stopped in reverse."""

    def __init__(self, settings: Settings, *, archive: AuditTrail | None = None) -> None:
        """Nothing starts until :meth:`start`; ``archive`` replaces the configured one (tests)."""
        self.settings = settings
        self.metrics = Metrics()
        self.health = Health(settings.replica_id)
        self.supervisor = Supervisor(self.metrics, self.health, expected=REDIS_DOWN)
        self.archive: AuditTrail = archive if archive is not None else DiscardAuditTrail()
        self._open_audit = archive is None
        self.stack = AsyncExitStack()
        self.pipeline: Pipeline | None = None
        self.intake: StreamIntake | None = None
        self.rules: RulesManager | None = None
        self.redis_link: RedisLink | None = None
        self.queue: DurableQueue | None = None
        self.http_port = 0

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
        s.data_dir.mkdir(parents=True, exist_ok=True)
        rules = self.rules = await self._load_rules()
        storage = await self._open_storage()
        if self._open_audit:
            self.archive = await self._open_archive(storage.redis)
        notifier = await self._open_notifier()
        rules.tell_compliance = notifier.tell_compliance
        pipeline = self.pipeline = Pipeline(
            settings=s,
            rules=rules,
            state=storage.state,
            queue=storage.queue,
            notifier=notifier,
            archive=self.archive,
            supervisor=self.supervisor,
        )
        await self._serve_http(pipeline)
        self._start_background(pipeline, rules)
        if s.stream_enabled:
            await self._start_intake(pipeline)
        log.info("bot running", extra={"version": rules.current.version, "replica": s.replica_id})

    # -- the steps, in start-up order ------------------------------------------------------
    async def _load_rules(self) -> RulesManager:
        """Rules first: a broken rule set stops start-up before anything connects."""
        s = self.settings
        rules = RulesManager(
            s.rules_dir,
            supervisor=self.supervisor,
            replica_id=s.replica_id,
            work_dir=s.data_dir / "rules-received",
            ner=s.rules_ner,
        )
        await rules.load_initial()
        self.stack.push_async_callback(rules.close)
        return rules

    async def _open_storage(self) -> Storage:
        """State and the durable queue: Redis when configured, else SQLite on local disk."""
        s = self.settings
        self.health.queue_max = s.queue_max_depth
        if not s.redis_url:
            local = await SqliteQueue(s.data_dir / "queue.sqlite3").open()
            self.stack.push_async_callback(local.close)
            self.queue = local
            return Storage(self._memory_state(), local, None)
        client = connect_redis(s.redis_url)
        self.stack.push_async_callback(client.aclose)
        try:
            await client.ping()
        except REDIS_DOWN as error:
            raise ConfigError(
                "BOT_REDIS_URL", f"Redis does not answer ({type(error).__name__})"
            ) from None
        self.health.redis_configured = True
        link = self.redis_link = RedisLink(client, self.supervisor)
        self.stack.push_async_callback(link.close)
        redis_state = RedisState(
            client,
            prefix=s.key_prefix,
            replica_id=s.replica_id,
            lease_seconds=s.claim_idle_seconds,
            done_ttl_seconds=s.dedupe_ttl_seconds,
        )
        primary = RedisQueue(
            client,
            prefix=s.key_prefix,
            consumer=s.replica_id,
            claim_idle_seconds=s.claim_idle_seconds,
        )
        await primary.ensure_group()
        spill = await SqliteQueue(s.data_dir / "spill.sqlite3", name="spill").open()
        self.stack.push_async_callback(spill.close)
        self.queue = FailoverQueue(
            primary, spill, link, self.metrics, put_timeout=s.accept_timeout_seconds
        )
        assert self.rules is not None  # noqa: S101  (loaded first)
        self.rules.attach(client, s.key_prefix)
        state = FailoverState(redis_state, self._memory_state(), link)
        return Storage(state, self.queue, client)

    def _memory_state(self) -> MemoryState:
        s = self.settings
        return MemoryState(
            lease_seconds=s.claim_idle_seconds, done_ttl_seconds=s.dedupe_ttl_seconds
        )

    async def _open_archive(self, redis: Redis | None) -> AuditTrail:
        """The audit archive the settings ask for; a missing key stops start-up."""
        s = self.settings
        if s.audit_sink == "none":
            log.warning("audit archive disabled (audit.sink = none): nothing is recorded")
            return DiscardAuditTrail()
        try:
            ring = load_from_environment()
        except ArchiveKeyError as error:
            raise ConfigError("BOT_ARCHIVE_KEY_FILE", str(error)) from None
        if s.audit_sink == "redis":
            assert redis is not None  # noqa: S101  (settings require BOT_REDIS_URL)
            if s.audit_archiver:
                store = await asyncio.to_thread(open_archive, None, ring)
                # Closing checkpoints the tail (an fsync): off the event loop.
                self.stack.push_async_callback(asyncio.to_thread, store.close)
                archiver = Archiver(redis, store, consumer=s.replica_id)
                self.stack.push_async_callback(archiver.stop)
                self.supervisor.spawn(_archive_forever(archiver), "archiver", essential=True)
            return SinkAuditTrail(RedisArchiveSink(redis, ring))
        writer = AsyncArchive(await asyncio.to_thread(open_archive, None, ring))
        self.stack.push_async_callback(writer.aclose)
        return SinkAuditTrail(writer)

    async def _open_notifier(self) -> Notifier:
        """Outbound: our own aiohttp client; wrong credentials stop start-up, named."""
        s = self.settings
        session = aiohttp.ClientSession()
        self.stack.push_async_callback(session.close)
        client = OutboundClient(
            session,
            endpoint=s.openapi_endpoint,
            client_id=s.client_id,
            client_secret=s.client_secret,
            robot_code=s.effective_robot_code,
            metrics=self.metrics,
            policy=RetryPolicy(
                attempts=s.outbound_attempts,
                timeout=s.outbound_timeout_seconds,
                backoff=Backoff(base=s.backoff_base_seconds, cap=s.backoff_max_seconds),
            ),
            webhook_hosts=s.allowed_webhook_hosts,
        )
        if s.client_id and s.client_secret:
            await client.check_credentials()
        return Notifier(
            client,
            compliance_conversation_id=s.compliance_conversation_id,
            warn_interval=s.warn_interval_seconds,
            escalation_interval=s.escalation_interval_seconds,
            supervisor=self.supervisor,
        )

    async def _serve_http(self, pipeline: Pipeline) -> None:
        """Health, metrics and ingest on the configured address."""
        s = self.settings
        ingest = Ingest(
            token=s.ingest_token,
            accept=pipeline.accept,
            refuse=pipeline.refuse_reason,
            supervisor=self.supervisor,
        )
        runner = web.AppRunner(
            build_app(self.health, self.metrics, ingest), access_log=None, handle_signals=False
        )
        await runner.setup()
        self.stack.push_async_callback(runner.cleanup)
        await web.TCPSite(runner, s.http_host, s.http_port).start()
        self.http_port = _bound_port(runner, s.http_port)

    def _start_background(self, pipeline: Pipeline, rules: RulesManager) -> None:
        """Consumer, queue-depth sampler, rule watcher; cancelled (after the drain) on stop."""
        self.stack.push_async_callback(self.supervisor.close)
        self.stack.push_async_callback(self._drain)
        self.supervisor.spawn(pipeline.consume(), "consumer", essential=True)
        self.supervisor.spawn(self._sample_depth(), "depth")
        self.supervisor.spawn(rules.watch(self.settings.rules_poll_seconds), "rules-watch")
        if rules.redis is not None:
            self.supervisor.spawn(rules.subscribe(), "rules-subscribe")

    async def _start_intake(self, pipeline: Pipeline) -> None:
        """The DingTalk stream, last."""
        s = self.settings
        intake = self.intake = StreamIntake(
            client_id=s.client_id,
            client_secret=s.client_secret,
            endpoint=s.openapi_endpoint,
            accept=self._accept_frame,
            supervisor=self.supervisor,
            accept_timeout=s.accept_timeout_seconds + 1.0,
            reconnect_max=s.reconnect_max_seconds,
        )
        self.health.stream_required = True
        intake.start()
        self.stack.push_async_callback(intake.stop)

    # -- running ---------------------------------------------------------------------------
    async def _accept_frame(self, message: Message) -> None:
        assert self.pipeline is not None  # noqa: S101
        await self.pipeline.accept(message)

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

    async def stop(self) -> None:
        """Ordered shutdown (see the module docstring)."""
        self.health.stopping = True
        await self.stack.aclose()
        log.info("stopped")


async def _archive_forever(archiver: Archiver) -> None:
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


async def run(settings: Settings, *, archive: AuditTrail | None = None) -> int:
    """Run until SIGTERM/SIGINT; SIGHUP reloads the rules. Returns the exit status."""
    bot = Bot(settings, archive=archive)
    await bot.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if bot.rules is not None:
        loop.add_signal_handler(signal.SIGHUP, bot.rules.request_reload, "signal")
    try:
        await stop.wait()
    finally:
        log.info("shutting down", extra={"reason": "signal"})
        await bot.stop()
    return 0


__all__ = ["Bot", "run"]
