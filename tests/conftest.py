"""Shared fixtures: the small fixture rule set, the shipped rule set, screeners built on them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.engine.rulebook.loader import load_rulebook
from bot.engine.rulebook.model import Rulebook
from bot.engine.screener import Screener

# The simulator, Redis and bot fixtures (sim, redis_prefix, private_redis) for every room.
pytest_plugins = ("tests.support.bot",)

REPO = Path(__file__).resolve().parent.parent
FIXTURE_RULES = Path(__file__).resolve().parent / "fixtures" / "rules"
SHIPPED_RULES = REPO / "rules"


@pytest.fixture(scope="session")
def fixture_screener() -> Screener:
    return Screener(load_rulebook(FIXTURE_RULES))


@pytest.fixture(scope="session")
def shipped_rulebook() -> Rulebook:
    return load_rulebook(SHIPPED_RULES)


@pytest.fixture(scope="session")
def shipped_screener(shipped_rulebook: Rulebook) -> Screener:
    return Screener(shipped_rulebook)
