"""One task supervisor and one error funnel: every background task and every failure pass here.

A failure anywhere (a message that cannot be screened, a Redis call during an outage, a
background loop that dies) is reported once: counted in ``bot_errors_total{stage}`` and
logged with its stage, the message id when there is one and the error's type, never its text
(exception messages can quote message text). An essential task's death fails /readyz and
/healthz. Modelled on python-telegram-bot's ``process_error``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from bot.infra.health import Health
from bot.infra.metrics import Metrics

log = logging.getLogger("bot.errors")


class Supervisor:
    """Starts background tasks, reports their failures, and stops them all in one call."""

    def __init__(
        self,
        metrics: Metrics,
        health: Health,
        expected: tuple[type[BaseException], ...] = (),
    ) -> None:
        """``expected`` errors (an outage, not a bug) are logged without a traceback."""
        self.metrics = metrics
        self.health = health
        self.expected = expected
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the funnel ------------------------------------------------------------------------
    def report(
        self,
        stage: str,
        error: BaseException,
        *,
        message_id: str | None = None,
        expected: bool | None = None,
    ) -> None:
        """Count and log one failure at ``stage`` (``expected`` ones, outages: no traceback)."""
        self.metrics.errors.labels(stage=stage).inc()
        if expected is None:
            expected = isinstance(error, self.expected)
        log.log(
            logging.WARNING if expected else logging.ERROR,
            "error",
            extra={"stage": stage, "error": type(error).__name__, "message_id": message_id},
            exc_info=not expected,
        )

    def note(self, stage: str, problem: str, *, message_id: str | None = None) -> None:
        """Count and log a problem that is not an exception (a regex that timed out)."""
        self.metrics.errors.labels(stage=stage).inc()
        log.warning("problem", extra={"stage": stage, "reason": problem, "message_id": message_id})

    # -- tasks -----------------------------------------------------------------------------
    def spawn(
        self, work: Coroutine[Any, Any, None], stage: str, *, essential: bool = False
    ) -> asyncio.Task[None]:
        """Run ``work`` in the background; its failure is reported (and is fatal if essential)."""

        async def supervised() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001  (the funnel; the process goes on)
                self.report(stage, error)
                if essential:
                    self.health.fatal = f"{stage}: {type(error).__name__}"
            else:
                if essential and not self.health.stopping:
                    # An essential loop that returns has stopped doing its job just the same.
                    self.health.fatal = f"{stage}: stopped"

        task = asyncio.get_running_loop().create_task(supervised(), name=stage)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def running(self) -> list[str]:
        """Names of the tasks still running (for tests and diagnostics)."""
        return sorted(task.get_name() for task in self._tasks if not task.done())

    async def close(self) -> None:
        """Cancel every task and wait for them to finish."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
