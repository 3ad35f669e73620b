"""What /healthz and /readyz report: the runtime updates it, the HTTP handlers read it."""

from __future__ import annotations

import time
from typing import Any


class Health:
    """Liveness and readiness of one replica (no secrets, no message data)."""

    def __init__(self, replica: str) -> None:
        """Start not ready: ready only once rules, queue and intake are up."""
        self.replica = replica
        self.started_at = time.time()
        self.rules_version = ""
        self.model_version = ""  # the intent model screening with the rules ("" = rules only)
        self.stream_required = False
        self.stream_connected = False
        self.redis_configured = False
        self.redis_up = True
        self.consumer_alive = False
        self.queue_depth = 0
        self.queue_max = 0
        self.stopping = False
        self.fatal = ""  # set when a background task the bot cannot work without has died

    def problems(self) -> list[str]:
        """Why the bot is not ready (empty when it is)."""
        out = []
        if self.fatal:
            out.append(f"essential task died ({self.fatal})")
        if self.stopping:
            out.append("shutting down")
        if not self.rules_version:
            out.append("no rule set loaded")
        if not self.consumer_alive:
            out.append("queue consumer not running")
        if self.stream_required and not self.stream_connected:
            out.append("DingTalk stream not connected")
        if self.queue_max and self.queue_depth >= self.queue_max:
            out.append("queue full")
        return out

    def snapshot(self) -> dict[str, Any]:
        """The health document."""
        return {
            "replica": self.replica,
            "rules_version": self.rules_version,
            "model_version": self.model_version,
            "uptime_seconds": round(time.time() - self.started_at, 1),
            "stream_connected": self.stream_connected,
            "redis": (
                ("up" if self.redis_up else "degraded") if self.redis_configured else "embedded"
            ),
            "queue_depth": self.queue_depth,
            "consumer_alive": self.consumer_alive,
            "fatal": self.fatal,
            "problems": self.problems(),
        }
