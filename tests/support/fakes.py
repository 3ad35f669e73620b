"""Small real parts for unit tests: a supervisor with its own metrics and health."""

from __future__ import annotations

from bot.infra.health import Health
from bot.infra.metrics import Metrics
from bot.infra.redis_link import REDIS_DOWN
from bot.infra.supervisor import Supervisor


def new_supervisor(replica: str = "t") -> Supervisor:
    """A supervisor over fresh metrics and health, treating Redis outages as expected."""
    return Supervisor(Metrics(), Health(replica), expected=REDIS_DOWN)
