"""Rule changes without restart: watch the files, validate, swap; fan out to replicas over Redis.

A broken rule set never replaces a working one: the last good set keeps screening and the
compliance group is told what is wrong. A good set found by one replica is published (its
files in a Redis key, its version on a pub/sub channel); every other replica loads that
bundle, checks it yields the same version, swaps, and reports the version it runs in
``{prefix}:replicas``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bot.engine.rulebook.loader import load_rulebook
from bot.engine.rulebook.model import RulebookError
from bot.engine.screener import Screener
from bot.infra.health import Health
from bot.infra.metrics import Metrics
from bot.infra.redis_link import REDIS_DOWN
from bot.infra.supervisor import Supervisor
from bot.runtime.notices import render_rules_rejected
from bot.runtime.rulesets import RuleSet, fingerprint, read_bundle, write_bundle

log = logging.getLogger(__name__)
BUNDLE_TTL = 30 * 24 * 3600


class RulesManager:
    """Holds the running rule set and replaces it when a valid new one appears."""

    def __init__(
        self,
        rules_dir: Path,
        *,
        supervisor: Supervisor,
        replica_id: str,
        work_dir: Path,
        ner: bool = False,
        tell_compliance: Callable[[str, str], Awaitable[bool]] | None = None,
    ) -> None:
        """``work_dir`` holds bundles received from other replicas."""
        self.rules_dir = rules_dir
        self.supervisor = supervisor
        self.metrics: Metrics = supervisor.metrics
        self.health: Health = supervisor.health
        self.replica_id = replica_id
        self.work_dir = work_dir
        self.ner = ner
        self.tell_compliance = tell_compliance
        self.redis: Redis | None = None
        self.prefix = ""
        self._current: RuleSet | None = None
        self._fingerprint: tuple[tuple[str, int, int], ...] = ()
        self._rejected_version: str | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscribed_before = False

    @property
    def current(self) -> RuleSet:
        """The rule set every message is screened with right now."""
        if self._current is None:
            raise RuntimeError("rules not loaded")
        return self._current

    # -- loading ----------------------------------------------------------------------------
    def _load(self, directory: Path) -> Screener:
        if self._current is not None:
            # Keep the loaded name finder and intent model: reloading spaCy for a rule edit is
            # wasteful (the model is reloaded only when policy.yaml names another one).
            return self._current.screener.with_rulebook(load_rulebook(directory))
        return Screener.from_directory(directory, ner=self.ner)

    async def load_initial(self) -> RuleSet:
        """Load the rule directory at start-up; a broken set stops start-up (RulebookError)."""
        self._fingerprint = await asyncio.to_thread(fingerprint, self.rules_dir)
        screener = await asyncio.to_thread(self._load, self.rules_dir)
        self._swap(RuleSet.build(screener), origin="start")
        return self.current

    async def reload(self, reason: str) -> bool:
        """Re-read the rule directory; swap and publish if valid and new. True when swapped."""
        async with self._lock:
            self._fingerprint = await asyncio.to_thread(fingerprint, self.rules_dir)
            try:
                screener = await asyncio.to_thread(self._load, self.rules_dir)
            except RulebookError as error:
                await self._reject([str(p) for p in error.problems], reason)
                return False
            except Exception as error:  # noqa: BLE001  (a loader bug must not kill the bot)
                await self._reject([f"{type(error).__name__}: {error}"], reason)
                return False
            self._rejected_version = None
            if screener.rules_version == self.current.version:
                self.metrics.rules_reloads.labels(outcome="unchanged").inc()
                return False
            self._swap(RuleSet.build(screener), origin=reason)
            await self._publish()
            return True

    async def _reject(self, problems: list[str], reason: str) -> None:
        self.metrics.rules_reloads.labels(outcome="rejected").inc()
        key = "\n".join(problems)
        log.error(
            "rule set rejected; keeping the last good one",
            extra={"version": self.current.version, "reason": reason, "count": len(problems)},
        )
        if key == self._rejected_version:
            return  # already reported this exact breakage
        self._rejected_version = key
        if self.tell_compliance is not None:
            title, text = render_rules_rejected(self.replica_id, self.current.version, problems)
            await self.tell_compliance(title, text)

    def _swap(self, ruleset: RuleSet, *, origin: str) -> None:
        previous = self._current.version if self._current else ""
        self._current = ruleset
        self.metrics.set_rules_version(ruleset.version)
        self.health.rules_version = ruleset.version
        screener = ruleset.screener
        self.health.model_version = screener.model_version
        if previous:
            self.metrics.rules_reloads.labels(outcome="applied").inc()
        log.info(
            "rule set running",
            extra={"version": ruleset.version, "reason": origin, "replica": self.replica_id},
        )
        if screener.policy.intent.model and screener.intent is None:
            # Screening goes on with rules only; operators must hear of it, once per swap.
            log.error("intent model not loaded", extra={"reason": screener.intent_status})
        if self.redis is not None:
            self._spawn(self._report())

    # -- watching ---------------------------------------------------------------------------
    async def watch(self, poll_seconds: float) -> None:
        """Poll the rule files for changes (no inotify dependency; a stat per file)."""
        while True:
            await asyncio.sleep(poll_seconds)
            try:
                current = await asyncio.to_thread(fingerprint, self.rules_dir)
                if current != self._fingerprint:
                    await self.reload("file change")
            except Exception as error:  # noqa: BLE001  (funnelled; watching goes on)
                self.supervisor.report("rules-watch", error)

    def request_reload(self, reason: str) -> None:
        """Schedule a reload from a signal handler."""
        self._spawn(self.reload(reason))

    def _spawn(self, step: Awaitable[Any]) -> None:
        async def run() -> None:
            await step

        task = self.supervisor.spawn(run(), "rules")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- replicas ---------------------------------------------------------------------------
    def attach(self, redis: Redis, prefix: str) -> None:
        """Share rule sets with other replicas through ``redis``."""
        self.redis = redis
        self.prefix = prefix

    @property
    def _channel(self) -> str:
        return f"{self.prefix}:rules"

    async def _publish(self) -> None:
        if self.redis is None:
            return
        version = self.current.version
        bundle = await asyncio.to_thread(read_bundle, self.rules_dir)
        try:
            await self.redis.set(
                f"{self.prefix}:rules:bundle:{version}", json.dumps(bundle), ex=BUNDLE_TTL
            )
            await self.redis.set(f"{self.prefix}:rules:current", version)
            await self.redis.publish(
                self._channel, json.dumps({"version": version, "replica": self.replica_id})
            )
        except REDIS_DOWN as error:
            self.supervisor.report("rules-publish", error)
            log.error(
                "could not publish the new rule set; other replicas keep theirs",
                extra={"version": version},
            )

    async def _report(self) -> None:
        assert self.redis is not None  # noqa: S101
        await self.redis.hset(
            f"{self.prefix}:replicas",
            self.replica_id,
            json.dumps({"version": self.current.version, "at": time.time()}),
        )

    async def adopt(self, version: str) -> bool:
        """Load the published bundle for ``version`` and swap to it. True when swapped."""
        assert self.redis is not None  # noqa: S101
        async with self._lock:
            if version == self.current.version:
                return False
            raw = await self.redis.get(f"{self.prefix}:rules:bundle:{version}")
            if raw is None:
                log.error("published rule bundle missing", extra={"version": version})
                return False
            target = self.work_dir / f"rules-{version}"
            try:
                await asyncio.to_thread(write_bundle, json.loads(raw), target)
                screener = await asyncio.to_thread(self._load, target)
            except (RulebookError, ValueError, OSError) as error:
                problems = (
                    [str(p) for p in error.problems]
                    if isinstance(error, RulebookError)
                    else [type(error).__name__]
                )
                await self._reject(problems, f"bundle from another replica ({version})")
                return False
            if screener.rules_version != version:
                await self._reject(
                    [f"bundle {version} loads as {screener.rules_version}"], "published bundle"
                )
                return False
            self._swap(RuleSet.build(screener), origin="published by another replica")
            return True

    async def subscribe(self) -> None:
        """Follow the rules channel; after any outage, catch up with the current version."""
        assert self.redis is not None  # noqa: S101
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                await self._report()
                raw = await self.redis.get(f"{self.prefix}:rules:current")
                current = str(raw) if raw is not None else None
                if current is None:
                    await self._publish()
                elif current != self.current.version:
                    # A set published while this replica was cut off is adopted; at start-up
                    # the local files win (a deploy must not be overridden), visibly.
                    if self._subscribed_before:
                        await self.adopt(current)
                    else:
                        log.warning(
                            "local rule set differs from the last one published",
                            extra={"version": self.current.version, "reason": current},
                        )
                self._subscribed_before = True
                reported = time.monotonic()
                while True:
                    message = await pubsub.get_message(timeout=2.0)
                    if time.monotonic() - reported > 30:
                        await self._report()  # heartbeat: the version this replica runs
                        reported = time.monotonic()
                    if message is None:
                        continue
                    data = json.loads(message["data"])
                    if data.get("replica") != self.replica_id:
                        await self.adopt(str(data["version"]))
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001  (funnelled; subscribe again)
                self.supervisor.report("rules-subscribe", error)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        """Wait for report/reload steps still running."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def replica_versions(redis: Redis, prefix: str) -> dict[str, str]:
    """{replica: rule-set version} as reported by every replica (for operators and tests)."""
    raw = await redis.hgetall(f"{prefix}:replicas")
    return {str(replica): json.loads(value)["version"] for replica, value in raw.items()}
