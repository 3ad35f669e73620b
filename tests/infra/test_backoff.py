"""The one backoff rule: grows, jitters, stays under its cap."""

from __future__ import annotations

import random

from bot.infra.backoff import Backoff


def test_backoff_grows_with_jitter_and_stays_under_the_cap() -> None:
    backoff = Backoff(base=0.25, cap=8.0, rng=random.Random(7))
    delays = [backoff.delay(attempt) for attempt in range(10)]
    assert 0.125 <= delays[0] <= 0.25
    assert all(d <= 8.0 for d in delays)
    assert delays[5] > delays[0]
    assert len(set(delays)) == len(delays)  # jitter: replicas do not retry in step


def test_a_huge_attempt_number_is_the_cap_not_an_overflow() -> None:
    backoff = Backoff(base=0.5, cap=30.0)
    assert 15.0 <= backoff.delay(10_000) <= 30.0
