"""The SQLite queue: embedded mode's durable queue, and the local spill while Redis is away."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from bot.infra.group_commit import GroupCommit
from bot.infra.queue import Envelope, QueueItem

log = logging.getLogger(__name__)
T = TypeVar("T")
Write = Callable[[sqlite3.Connection], Any]


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
        self._writes: GroupCommit[Write, Any] = GroupCommit(self._apply)
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
        await self._writes.flush()
        for timer in self._timers:
            timer.cancel()

        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self._run(shut)
        self._executor.shutdown(wait=True)

    # Writes that arrive together share one transaction: a burst costs one commit.
    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        result: T = await self._writes.submit(op)
        return result

    async def _apply(self, batch: list[Write]) -> Sequence[Any]:
        return await self._run(functools.partial(self._transaction, batch))

    def _transaction(self, batch: list[Write]) -> list[Any]:
        assert self._conn is not None  # noqa: S101
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            results = [op(conn) for op in batch]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return results

    async def put(self, envelope: Envelope) -> str:
        """See :meth:`DurableQueue.put`."""
        payload = envelope.encode()
        await self._write(
            lambda c: c.execute("INSERT INTO entries(payload) VALUES (?)", (payload,))
        )
        self._depth += 1
        self._wakeup.set()
        return self.name

    async def fetch(self, limit: int, wait: float) -> list[QueueItem]:
        """See :meth:`DurableQueue.fetch`."""
        # Clear before looking, not after: a put landing while we select must still wake us.
        self._wakeup.clear()
        entries = await self._select(limit)
        if entries or wait <= 0:
            return entries
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), wait)
        return await self._select(limit)

    async def _select(self, limit: int) -> list[QueueItem]:
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

    def _entry(self, seq: int, payload: str) -> QueueItem:
        return QueueItem(str(seq), Envelope.decode(payload), self.name)

    async def ack(self, entry: QueueItem) -> None:
        """See :meth:`DurableQueue.ack`."""
        seq = int(entry.key)
        await self._write(lambda c: c.execute("DELETE FROM entries WHERE seq = ?", (seq,)))
        self._depth -= 1

    async def requeue(self, entry: QueueItem, envelope: Envelope) -> None:
        """See :meth:`DurableQueue.requeue`."""
        seq, payload = int(entry.key), envelope.encode()

        def op(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM entries WHERE seq = ?", (seq,))
            c.execute("INSERT INTO entries(payload) VALUES (?)", (payload,))

        await self._write(op)
        self._wakeup.set()

    async def bury(self, entry: QueueItem, reason: str) -> None:
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

    async def defer(self, entry: QueueItem, delay: float) -> None:
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
