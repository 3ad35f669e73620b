"""The durable intake queue: a Redis Stream with a consumer group, or SQLite on local disk.

A message is acknowledged to DingTalk (or to an ingest client) only after ``put`` returns,
and leaves the queue only when ``ack`` is called after every action and the audit record are
done: a crash anywhere in between replays it, and dedupe (bot.infra.state) keeps the replay from
acting twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import redis.exceptions

from bot.domain import Message
from bot.infra.state import REDIS_DOWN

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from bot.infra.ops import Metrics
    from bot.infra.state import RedisLink

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Envelope:
    """A message as queued: when it was accepted (for end-to-end latency) and how often tried."""

    message: Message
    received_at: float
    attempts: int = 0

    def encode(self) -> str:
        """JSON for the queue; the message text is in it (the queue is transient, see docs)."""
        m = self.message
        return json.dumps(
            {
                "m": {
                    "id": m.id,
                    "text": m.text,
                    "conversation_id": m.conversation_id,
                    "conversation_title": m.conversation_title,
                    "sender_id": m.sender_id,
                    "sender_name": m.sender_name,
                    "source": m.source,
                    "sent_at": m.sent_at.isoformat() if m.sent_at else None,
                    "session_webhook": m.session_webhook,
                    "sender_staff_id": m.sender_staff_id,
                },
                "r": self.received_at,
                "a": self.attempts,
            },
            ensure_ascii=False,
        )

    @classmethod
    def decode(cls, payload: str) -> Envelope:
        """Inverse of :meth:`encode`."""
        data = json.loads(payload)
        m: dict[str, Any] = data["m"]
        sent_at = datetime.fromisoformat(m["sent_at"]) if m.get("sent_at") else None
        message = Message(
            id=m["id"],
            text=m["text"],
            conversation_id=m.get("conversation_id", ""),
            conversation_title=m.get("conversation_title", ""),
            sender_id=m.get("sender_id", ""),
            sender_name=m.get("sender_name", ""),
            source=m.get("source", "cli"),
            sent_at=sent_at,
            session_webhook=m.get("session_webhook", ""),
            sender_staff_id=m.get("sender_staff_id", ""),
        )
        return cls(message, float(data["r"]), int(data.get("a", 0)))


@dataclass(frozen=True, slots=True)
class Entry:
    """One fetched queue item; ``key`` is the queue's own id, ``origin`` the queue's name."""

    key: str
    envelope: Envelope
    origin: str


class DurableQueue(Protocol):
    """What the pipeline needs from a queue."""

    async def put(self, envelope: Envelope) -> str:
        """Store durably; returns the name of the queue that took it."""
        ...

    async def fetch(self, limit: int, wait: float) -> list[Entry]:
        """Up to ``limit`` entries, waiting up to ``wait`` seconds for the first."""
        ...

    async def ack(self, entry: Entry) -> None:
        """Remove a handled entry."""
        ...

    async def requeue(self, entry: Entry, envelope: Envelope) -> None:
        """Replace ``entry`` with ``envelope`` (a retry with its attempt count raised)."""
        ...

    async def bury(self, entry: Entry, reason: str) -> None:
        """Move ``entry`` to the dead-letter store (kept for an operator, never dropped)."""
        ...

    async def defer(self, entry: Entry, delay: float) -> None:
        """Leave ``entry`` unhandled; make it fetchable again after ``delay`` seconds."""
        ...

    async def depth(self) -> int:
        """Entries accepted and not yet acknowledged."""
        ...


# -- SQLite (embedded mode, and the spill when Redis is away) -------------------------------
class SqliteQueue:
    """A queue in one SQLite file, used from one process.

    Every call runs on one dedicated thread (SQLite connections are thread-bound and the
    event loop must not block on disk); writes that arrive together share one transaction,
    so a burst costs one commit, not one per message. WAL with ``synchronous=NORMAL``
    survives a process crash; like Redis' ``appendfsync everysec``, an OS crash can lose
    the last commits.
    """

    def __init__(self, path: Path, name: str = "local") -> None:
        """Nothing is opened until :meth:`open`."""
        self.path = path
        self.name = name
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"queue-{name}")
        self._conn: sqlite3.Connection | None = None
        self._cursor = 0  # rows up to here have been fetched (and are claimed or deferred)
        self._ready: deque[int] = deque()  # deferred rows that are due again
        self._timers: set[asyncio.TimerHandle] = set()
        self._writes: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._depth = 0

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def open(self) -> SqliteQueue:
        """Create the file and tables if needed; count what is waiting from a previous run."""

        def setup() -> int:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS entries ("
                "seq INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT NOT NULL)"
            )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS dead ("
                "seq INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT NOT NULL, "
                "reason TEXT NOT NULL, at REAL NOT NULL)"
            )
            self._conn = conn
            return int(conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

        self._depth = await self._run(setup)
        if self._depth:
            log.warning(
                "queue has entries from a previous run; replaying them",
                extra={"depth": self._depth, "source": self.name},
            )
        return self

    async def close(self) -> None:
        """Finish pending writes and close the file."""
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher
        for timer in self._timers:
            timer.cancel()

        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self._run(shut)
        self._executor.shutdown(wait=True)

    # Writes are batched: each caller waits for the commit of the batch that holds its write.
    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._writes.append((op, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._writes:
            batch, self._writes = self._writes, []

            def apply(batch: list[tuple[Callable[[sqlite3.Connection], Any], Any]]) -> list[Any]:
                assert self._conn is not None  # noqa: S101
                conn = self._conn
                results = []
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for op, _ in batch:
                        results.append(op(conn))
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                return results

            try:
                results = await self._run(functools.partial(apply, batch))
            except Exception as error:  # noqa: BLE001  (handed to every waiting caller)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def put(self, envelope: Envelope) -> str:
        """See :meth:`DurableQueue.put`."""
        payload = envelope.encode()
        await self._write(
            lambda c: c.execute("INSERT INTO entries(payload) VALUES (?)", (payload,))
        )
        self._depth += 1
        self._wakeup.set()
        return self.name

    async def fetch(self, limit: int, wait: float) -> list[Entry]:
        """See :meth:`DurableQueue.fetch`."""
        # Clear before looking, not after: a put landing while we select must still wake us.
        self._wakeup.clear()
        entries = await self._select(limit)
        if entries or wait <= 0:
            return entries
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), wait)
        return await self._select(limit)

    async def _select(self, limit: int) -> list[Entry]:
        due = [self._ready.popleft() for _ in range(min(limit, len(self._ready)))]
        cursor = self._cursor

        def select() -> list[tuple[int, str]]:
            assert self._conn is not None  # noqa: S101
            rows: list[tuple[int, str]] = []
            if due:
                marks = ",".join("?" * len(due))
                rows.extend(
                    self._conn.execute(
                        f"SELECT seq, payload FROM entries WHERE seq IN ({marks})",  # noqa: S608
                        due,
                    ).fetchall()
                )
            rows.extend(
                self._conn.execute(
                    "SELECT seq, payload FROM entries WHERE seq > ? ORDER BY seq LIMIT ?",
                    (cursor, limit - len(due)),
                ).fetchall()
            )
            return rows

        rows = await self._run(select)
        out = []
        for seq, payload in rows:
            if seq > self._cursor:
                self._cursor = seq
            out.append(self._entry(seq, payload))
        return out

    def _entry(self, seq: int, payload: str) -> Entry:
        return Entry(str(seq), Envelope.decode(payload), self.name)

    async def ack(self, entry: Entry) -> None:
        """See :meth:`DurableQueue.ack`."""
        seq = int(entry.key)
        await self._write(lambda c: c.execute("DELETE FROM entries WHERE seq = ?", (seq,)))
        self._depth -= 1

    async def requeue(self, entry: Entry, envelope: Envelope) -> None:
        """See :meth:`DurableQueue.requeue`."""
        seq, payload = int(entry.key), envelope.encode()

        def op(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM entries WHERE seq = ?", (seq,))
            c.execute("INSERT INTO entries(payload) VALUES (?)", (payload,))

        await self._write(op)
        self._wakeup.set()

    async def bury(self, entry: Entry, reason: str) -> None:
        """See :meth:`DurableQueue.bury`."""
        seq, payload = int(entry.key), entry.envelope.encode()

        def op(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM entries WHERE seq = ?", (seq,))
            c.execute(
                "INSERT INTO dead(payload, reason, at) VALUES (?, ?, ?)",
                (payload, reason, time.time()),
            )

        await self._write(op)
        self._depth -= 1

    async def defer(self, entry: Entry, delay: float) -> None:
        """See :meth:`DurableQueue.defer`."""
        seq = int(entry.key)

        def due() -> None:
            self._timers.discard(timer)
            self._ready.append(seq)
            self._wakeup.set()

        timer = asyncio.get_running_loop().call_later(delay, due)
        self._timers.add(timer)

    async def depth(self) -> int:
        """See :meth:`DurableQueue.depth`."""
        return self._depth

    async def dead_letters(self) -> int:
        """How many entries were given up (for tests and operators)."""

        def count() -> int:
            assert self._conn is not None  # noqa: S101
            return int(self._conn.execute("SELECT COUNT(*) FROM dead").fetchone()[0])

        return await self._run(count)


# -- Redis Streams (shared by replicas) -----------------------------------------------------
class RedisQueue:
    """A Redis Stream read through a consumer group.

    Each replica is one consumer. An entry a replica fetched but never acknowledged (it
    crashed) stays in the group's pending list; after ``claim_idle`` seconds any replica takes
    it over with XAUTOCLAIM. At start a replica first re-reads its own pending entries, which
    matters when its name is stable (``bot.replica_id``).
    """

    name = "redis"

    def __init__(
        self, client: Redis, *, prefix: str, consumer: str, claim_idle_seconds: float
    ) -> None:
        """Stream ``{prefix}:queue``, dead letters in ``{prefix}:dead``, group ``workers``."""
        self.client = client
        self.stream = f"{prefix}:queue"
        self.dead = f"{prefix}:dead"
        self.group = "workers"
        self.consumer = consumer
        self.claim_idle_ms = int(claim_idle_seconds * 1000)
        self._own_pending = True
        self._autoclaim_cursor = "0-0"
        self._last_autoclaim = 0.0

    async def ensure_group(self) -> None:
        """Create the stream and group if missing (first start, or Redis lost its data)."""
        try:
            await self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._own_pending = True

    async def put(self, envelope: Envelope) -> str:
        """See :meth:`DurableQueue.put`."""
        await self.client.xadd(self.stream, {"e": envelope.encode()})
        return self.name

    async def fetch(self, limit: int, wait: float) -> list[Entry]:
        """See :meth:`DurableQueue.fetch`."""
        try:
            return await self._fetch(limit, wait)
        except redis.exceptions.ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            # Redis restarted without persistence: the stream and group are gone.
            log.error("redis queue group missing; recreating it", extra={"stage": "queue"})
            await self.ensure_group()
            return []

    async def _fetch(self, limit: int, wait: float) -> list[Entry]:
        if self._own_pending:
            response = await self.client.xreadgroup(
                self.group, self.consumer, {self.stream: "0"}, count=limit
            )
            entries = self._parse(response)
            if entries:
                return entries
            self._own_pending = False
        now = time.monotonic()
        if now - self._last_autoclaim >= self.claim_idle_ms / 4000:
            self._last_autoclaim = now
            result = await self.client.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                self.claim_idle_ms,
                self._autoclaim_cursor,
                count=limit,
            )
            self._autoclaim_cursor = result[0] if result[0] else "0-0"
            entries = [self._entry(i, f) for i, f in result[1] if f]
            if entries:
                log.warning(
                    "took over entries another consumer left unacknowledged",
                    extra={"count": len(entries), "stage": "queue"},
                )
                return entries
        # BLOCK 0 would mean "forever"; no wait means no BLOCK at all.
        block = int(wait * 1000) or None
        response = await self.client.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=limit, block=block
        )
        return self._parse(response)

    def _parse(self, response: Any) -> list[Entry]:
        entries: list[Entry] = []
        if not response:
            return entries
        # RESP2 (the client's default): [[stream, [(id, fields), ...]]]
        for _, items in response:
            for entry_id, fields in items:
                if fields:  # an entry deleted while pending comes back without fields
                    entries.append(self._entry(entry_id, fields))
        return entries

    def _entry(self, entry_id: str, fields: dict[str, str]) -> Entry:
        return Entry(entry_id, Envelope.decode(fields["e"]), self.name)

    async def ack(self, entry: Entry) -> None:
        """See :meth:`DurableQueue.ack`; XDEL too, so XLEN is the real backlog."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.group, entry.key)
            pipe.xdel(self.stream, entry.key)
            await pipe.execute()

    async def requeue(self, entry: Entry, envelope: Envelope) -> None:
        """See :meth:`DurableQueue.requeue`."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xadd(self.stream, {"e": envelope.encode()})
            pipe.xack(self.stream, self.group, entry.key)
            pipe.xdel(self.stream, entry.key)
            await pipe.execute()

    async def bury(self, entry: Entry, reason: str) -> None:
        """See :meth:`DurableQueue.bury`."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dead, {"e": entry.envelope.encode(), "reason": reason})
            pipe.xack(self.stream, self.group, entry.key)
            pipe.xdel(self.stream, entry.key)
            await pipe.execute()

    async def defer(self, entry: Entry, delay: float) -> None:
        """See :meth:`DurableQueue.defer`: left pending, XAUTOCLAIM returns it when idle."""
        del entry, delay

    async def depth(self) -> int:
        """See :meth:`DurableQueue.depth`."""
        return int(await self.client.xlen(self.stream))


class FailoverQueue:
    """Redis while it answers; the local SQLite spill while it does not.

    Nothing accepted is dropped: a put that Redis refuses goes to the spill (logged, counted),
    and spilled entries are handled first, by this replica, as soon as it can. An entry whose
    ack could not reach Redis stays pending there and comes back after the idle time, when
    dedupe recognises it as done.
    """

    def __init__(
        self,
        primary: RedisQueue,
        spill: SqliteQueue,
        link: RedisLink,
        metrics: Metrics,
        *,
        put_timeout: float,
    ) -> None:
        """Register the consumer-group check as a recovery step of ``link``."""
        self.primary = primary
        self.spill = spill
        self.link = link
        self.metrics = metrics
        self.put_timeout = put_timeout
        link.on_recover.append(primary.ensure_group)

    async def put(self, envelope: Envelope) -> str:
        """See :meth:`DurableQueue.put`."""
        if self.link.up:
            try:
                return await asyncio.wait_for(self.primary.put(envelope), self.put_timeout)
            except REDIS_DOWN as error:
                # A timed-out XADD may still have landed: the spilled copy is then a
                # duplicate, which dedupe absorbs. Losing it would be worse.
                self.link.failed(error)
        await self.spill.put(envelope)
        self.metrics.spilled.inc()
        return self.spill.name

    async def fetch(self, limit: int, wait: float) -> list[Entry]:
        """See :meth:`DurableQueue.fetch`."""
        local = await self.spill.fetch(limit, 0)
        if local:
            return local
        if self.link.up:
            try:
                return await self.primary.fetch(limit, wait)
            except REDIS_DOWN as error:
                self.link.failed(error)
        # While degraded, wake often enough to notice that Redis is back.
        return await self.spill.fetch(limit, min(wait, 0.5))

    def _queue(self, entry: Entry) -> DurableQueue:
        return self.spill if entry.origin == self.spill.name else self.primary

    async def _on(self, entry: Entry, call: Callable[[DurableQueue], Any]) -> None:
        queue = self._queue(entry)
        if queue is self.spill:
            await call(queue)
            return
        try:
            await call(queue)
        except REDIS_DOWN as error:
            self.link.failed(error)
            log.warning(
                "could not update a redis queue entry; it will be re-delivered and deduped",
                extra={"message_id": entry.envelope.message.id, "stage": "queue"},
            )

    async def ack(self, entry: Entry) -> None:
        """See :meth:`DurableQueue.ack`."""
        await self._on(entry, lambda q: q.ack(entry))

    async def requeue(self, entry: Entry, envelope: Envelope) -> None:
        """See :meth:`DurableQueue.requeue`."""
        await self._on(entry, lambda q: q.requeue(entry, envelope))

    async def bury(self, entry: Entry, reason: str) -> None:
        """See :meth:`DurableQueue.bury`."""
        await self._on(entry, lambda q: q.bury(entry, reason))

    async def defer(self, entry: Entry, delay: float) -> None:
        """See :meth:`DurableQueue.defer`."""
        await self._queue(entry).defer(entry, delay)

    async def depth(self) -> int:
        """See :meth:`DurableQueue.depth`; Redis' part only while it answers."""
        total = await self.spill.depth()
        if self.link.up:
            try:
                total += await self.primary.depth()
            except REDIS_DOWN as error:
                self.link.failed(error)
        return total


def retried(envelope: Envelope) -> Envelope:
    """The envelope for the next attempt."""
    return replace(envelope, attempts=envelope.attempts + 1)
