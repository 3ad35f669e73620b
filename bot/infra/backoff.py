"""The one backoff rule: exponential, capped, equal jitter (replicas do not retry in step)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry ``attempt`` (0-based): half fixed, half random, never above ``cap``."""

    base: float = 0.25
    cap: float = 8.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before the retry after ``attempt`` failures (``attempt`` >= 0)."""
        ceiling = min(self.cap, self.base * 2.0 ** min(max(0, attempt), 60))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)
