"""The durable intake queue: what the pipeline needs from it, and the queued message's envelope.

A message is acknowledged to DingTalk (or to an ingest client) only after ``put`` returns,
and leaves the queue only when ``ack`` is called after every action and the audit record are
done: a crash anywhere in between replays it, and dedupe (bot.infra.state) keeps the replay
from acting twice. Implementations: :mod:`.sqlite` (embedded mode, and the spill while Redis
is away), :mod:`.redis_stream` (shared by replicas), :mod:`.failover` (the two together).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Protocol

from bot.domain import Message


@dataclass(frozen=True, slots=True)
class Envelope:
    """A message as queued: when it was accepted (for end-to-end latency) and how often tried."""

    message: Message
    received_at: float
    attempts: int = 0

    def encode(self) -> str:
        """JSON for the queue; the message text is in it (the queue is transient, see docs)."""
        body = {"m": self.message.to_dict(), "r": self.received_at, "a": self.attempts}
        return json.dumps(body, ensure_ascii=False)

    @classmethod
    def decode(cls, payload: str) -> Envelope:
        """Inverse of :meth:`encode`."""
        data = json.loads(payload)
        return cls(Message.from_dict(data["m"]), float(data["r"]), int(data.get("a", 0)))


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One fetched item; ``key`` is the queue's own id for it, ``origin`` the queue's name."""

    key: str
    envelope: Envelope
    origin: str


class DurableQueue(Protocol):
    """What the pipeline needs from a queue."""

    async def put(self, envelope: Envelope) -> str:
        """Store durably; returns the name of the queue that took it."""
        ...

    async def fetch(self, limit: int, wait: float) -> list[QueueItem]:
        """Up to ``limit`` entries, waiting up to ``wait`` seconds for the first."""
        ...

    async def ack(self, entry: QueueItem) -> None:
        """Remove a handled entry."""
        ...

    async def requeue(self, entry: QueueItem, envelope: Envelope) -> None:
        """Replace ``entry`` with ``envelope`` (a retry with its attempt count raised)."""
        ...

    async def bury(self, entry: QueueItem, reason: str) -> None:
        """Move ``entry`` to the dead-letter store (kept for an operator, never dropped)."""
        ...

    async def defer(self, entry: QueueItem, delay: float) -> None:
        """Leave ``entry`` unhandled; make it fetchable again after ``delay`` seconds."""
        ...

    async def depth(self) -> int:
        """Entries accepted and not yet acknowledged."""
        ...


def retried(envelope: Envelope) -> Envelope:
    """The envelope for the next attempt."""
    return replace(envelope, attempts=envelope.attempts + 1)
