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
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.engine.rulebook import RulebookError, load_rulebook
from bot.engine.screener import NAME_RULE_ID, NAME_TITLE, Screener
from bot.infra.state import REDIS_DOWN
from bot.runtime.notify import RuleNote, render_rules_rejected

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from bot.infra.ops import Health, Metrics

log = logging.getLogger(__name__)
BUNDLE_SUFFIXES = (".yaml", ".yml")
BUNDLE_TTL = 30 * 24 * 3600


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A loaded, validated rule set and what chat messages may say about each rule."""

    screener: Screener
    notes: dict[str, RuleNote]

    @property
    def version(self) -> str:
        """The rule set's content hash."""
        return self.screener.rules_version

    @classmethod
    def build(cls, screener: Screener) -> RuleSet:
        """Index rule titles and bilingual messages by id."""
        notes = {
            rule.id: RuleNote(
                rule.id, rule.title, rule.category, rule.severity, rule.message_zh, rule.message_en
            )
            for rule in screener.rulebook.rules
        }
        return cls(screener, notes)

    def note(self, rule_id: str, fallback: RuleNote) -> RuleNote:
        """The note for ``rule_id`` (names found by NER have no rule file)."""
        if rule_id == NAME_RULE_ID:
            return RuleNote(
                NAME_RULE_ID,
                NAME_TITLE,
                fallback.category,
                fallback.severity,
                "請勿在群內把客戶姓名與其個人資料一併發送。",
                "Do not post a client's name together with their personal data.",
            )
        return self.notes.get(rule_id, fallback)


def read_bundle(directory: Path) -> dict[str, str]:
    """The rule files of ``directory`` as {relative path: text}."""
    return {
        str(path.relative_to(directory)): path.read_text(encoding="utf-8")
        for path in sorted(directory.rglob("*"))
        if path.suffix in BUNDLE_SUFFIXES and path.is_file()
    }


def write_bundle(bundle: dict[str, str], directory: Path) -> None:
    """Materialise a bundle (refusing paths that escape ``directory``)."""
    if directory.exists():
        shutil.rmtree(directory)
    for relative, text in bundle.items():
        target = (directory / relative).resolve()
        if directory.resolve() not in target.parents:
            raise ValueError(f"bundle path escapes the rules directory: {relative!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """Cheap change detection: name, size and mtime of every rule file."""
    out = []
    for path in sorted(directory.rglob("*")):
        if path.suffix in BUNDLE_SUFFIXES:
            with contextlib.suppress(OSError):
                stat = path.stat()
                out.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(out)


class RulesManager:
    """Holds the running rule set and replaces it when a valid new one appears."""

    def __init__(
        self,
        rules_dir: Path,
        *,
        metrics: Metrics,
        health: Health,
        replica_id: str,
        work_dir: Path,
        ner: bool = False,
        tell_compliance: Callable[[str, str], Awaitable[bool]] | None = None,
    ) -> None:
        """``work_dir`` holds bundles received from other replicas."""
        self.rules_dir = rules_dir
        self.metrics = metrics
        self.health = health
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
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed_before = False

    @property
    def current(self) -> RuleSet:
        """The rule set every message is screened with right now."""
        if self._current is None:
            raise RuntimeError("rules not loaded")
        return self._current

    # -- loading ----------------------------------------------------------------------------
    def _load(self, directory: Path) -> Screener:
        rulebook = load_rulebook(directory)
        if self._current is not None:
            # Reuse the loaded name finder: reloading spaCy for a rule edit is wasteful.
            return Screener(rulebook, self._current.screener.names)
        if self.ner:
            return Screener.from_directory(directory, ner=True)
        return Screener(rulebook)

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
                self.metrics.rules_reloads.inc(outcome="unchanged")
                return False
            self._swap(RuleSet.build(screener), origin=reason)
            await self._publish()
            return True

    async def _reject(self, problems: list[str], reason: str) -> None:
        self.metrics.rules_reloads.inc(outcome="rejected")
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
        if previous:
            self.metrics.rules_reloads.inc(outcome="applied")
        log.info(
            "rule set running",
            extra={"version": ruleset.version, "reason": origin, "replica": self.replica_id},
        )
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
            except Exception:
                log.exception("rule watcher step failed", extra={"stage": "rules"})

    def request_reload(self, reason: str) -> None:
        """Schedule a reload from a signal handler."""
        self._spawn(self.reload(reason))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        async def run() -> None:
            try:
                await coro
            except REDIS_DOWN:
                log.warning("redis unavailable for a rules step", extra={"stage": "rules"})
            except Exception:
                log.exception("rules step failed", extra={"stage": "rules"})

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

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
        except REDIS_DOWN:
            log.error(
                "could not publish the new rule set; other replicas keep theirs",
                extra={"version": version, "stage": "rules"},
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
            except REDIS_DOWN:
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("rules subscription failed", extra={"stage": "rules"})
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
