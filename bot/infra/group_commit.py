"""Group commit: what callers submit while one batch is applied goes together into the next.

The SQLite queue (one transaction per batch), the archive writer (one fsync per batch) and
the per-group warning outbox (one chat message per batch) share this loop. Each caller waits
for the batch that carries its item and gets its own result or its own exception.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Apply = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]


class GroupCommit(Generic[T, R]):
    """Batches submitted items and applies each batch once.

    ``apply`` gets the items of one batch and returns one result per item, in order; an
    exception instance in that list fails only its own caller, an exception raised fails the
    whole batch. ``before_batch`` runs before each batch is taken (a rate limit waits there,
    so items arriving meanwhile join). ``weight`` counts an item towards ``max_batch``.
    """

    def __init__(
        self,
        apply: Apply[T, R],
        *,
        max_batch: int = 512,
        before_batch: Callable[[], Awaitable[None]] | None = None,
        weight: Callable[[T], int] = lambda _item: 1,
    ) -> None:
        """Nothing runs until the first :meth:`submit`."""
        self._apply = apply
        self.max_batch = max_batch
        self._before_batch = before_batch
        self._weight = weight
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Queue ``item``; return its result once the batch carrying it has been applied."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if self._runner is None or self._runner.done():
            self._runner = loop.create_task(self._run())
        # Shielded: a cancelled caller (shutdown) must not cancel a batch others wait on;
        # its item is still applied (an audit record is better written than lost).
        return await asyncio.shield(future)

    @property
    def idle(self) -> bool:
        """Nothing pending or being applied."""
        return not self._pending and (self._runner is None or self._runner.done())

    async def flush(self) -> None:
        """Wait until everything submitted so far has been applied."""
        while self._runner is not None and not self._runner.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(self._runner)

    async def _run(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._pending:
                if self._before_batch is not None:
                    await self._before_batch()
                batch = self._take()
                try:
                    results = await self._apply([item for item, _ in batch])
                except Exception as error:  # noqa: BLE001  (handed to every waiting caller)
                    results = [error] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    _settle(future, result)
                batch = []
        except asyncio.CancelledError:
            # Shutdown cancelled the runner: nobody may wait forever for an answer.
            for _, future in [*batch, *self._pending]:
                future.cancel()
            self._pending = []
            raise

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        """The next batch: never over ``max_batch``, unless one item alone is heavier."""
        taken, size = 0, 0
        for item, _ in self._pending:
            weight = self._weight(item)
            if taken and size + weight > self.max_batch:
                break
            size += weight
            taken += 1
        batch, self._pending = self._pending[:taken], self._pending[taken:]
        return batch


def _settle(future: asyncio.Future[R], result: R | BaseException) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
