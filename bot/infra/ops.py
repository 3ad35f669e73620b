"""Operations: Prometheus metrics (text exposition written here), JSON logs, health endpoints."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

# -- metrics --------------------------------------------------------------------------------
# prometheus-client is not a dependency; the text format (0.0.4) is small enough to write.
_Labels = tuple[tuple[str, str], ...]
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_labels(labels: _Labels, extra: _Labels = ()) -> str:
    pairs = (*labels, *extra)
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _format_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> _Labels:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {sorted(labels)}")
        return tuple((name, str(labels[name])) for name in self.labelnames)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    """A monotonically increasing count, optionally split by labels."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labelnames)
        self._values: dict[_Labels, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` to the series named by ``labels``."""
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        """The current value of one series (0 when never incremented)."""
        return self._values.get(self._key(labels), 0.0)

    def total(self) -> float:
        """The sum over every series."""
        return sum(self._values.values())

    def samples(self) -> list[str]:  # noqa: D102
        with self._lock:
            items = sorted(self._values.items())
        if not items and not self.labelnames:
            items = [((), 0.0)]
        return [f"{self.name}{_format_labels(k)} {_format_value(v)}" for k, v in items]


class Gauge(_Metric):
    """A value that goes up and down; ``collect`` (when given) is read at scrape time."""

    kind = "gauge"

    def __init__(
        self,
        name: str,
        help_text: str,
        labelnames: Sequence[str] = (),
        collect: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(name, help_text, labelnames)
        self._values: dict[_Labels, float] = {}
        self.collect = collect

    def set(self, value: float, **labels: str) -> None:
        """Set one series."""
        key = self._key(labels)
        with self._lock:
            self._values[key] = value

    def clear(self) -> None:
        """Forget every series (for info-style gauges whose label changes)."""
        with self._lock:
            self._values.clear()

    def value(self, **labels: str) -> float:
        """The current value of one series."""
        if self.collect is not None and not labels:
            return self.collect()
        return self._values.get(self._key(labels), 0.0)

    def samples(self) -> list[str]:  # noqa: D102
        if self.collect is not None:
            return [f"{self.name} {_format_value(self.collect())}"]
        with self._lock:
            items = sorted(self._values.items())
        if not items and not self.labelnames:
            items = [((), 0.0)]
        return [f"{self.name}{_format_labels(k)} {_format_value(v)}" for k, v in items]


class Histogram(_Metric):
    """Observations counted into cumulative buckets, plus their sum and count."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        buckets: Sequence[float] = LATENCY_BUCKETS,
        labelnames: Sequence[str] = (),
    ) -> None:
        super().__init__(name, help_text, labelnames)
        self.buckets = tuple(sorted(buckets))
        self._series: dict[_Labels, list[float]] = {}  # bucket counts..., sum, count

    def observe(self, value: float, **labels: str) -> None:
        """Record one observation."""
        key = self._key(labels)
        with self._lock:
            series = self._series.setdefault(key, [0.0] * (len(self.buckets) + 2))
            for index, bound in enumerate(self.buckets):
                if value <= bound:
                    series[index] += 1
            series[-2] += value
            series[-1] += 1

    def count(self, **labels: str) -> int:
        """How many observations one series has."""
        series = self._series.get(self._key(labels))
        return int(series[-1]) if series else 0

    def samples(self) -> list[str]:  # noqa: D102
        lines = []
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._series.items())
        for key, series in items:
            for bound, count in zip(self.buckets, series, strict=False):
                le = (("le", _format_value(bound)),)
                lines.append(f"{self.name}_bucket{_format_labels(key, le)} {_format_value(count)}")
            inf = (("le", "+Inf"),)
            lines.append(
                f"{self.name}_bucket{_format_labels(key, inf)} {_format_value(series[-1])}"
            )
            lines.append(f"{self.name}_sum{_format_labels(key)} {series[-2]!r}")
            lines.append(f"{self.name}_count{_format_labels(key)} {_format_value(series[-1])}")
        return lines


class Metrics:
    """Every metric the bot exports, as attributes, rendered by :meth:`render`."""

    def __init__(self) -> None:
        """Create the metric families (one instance per running bot)."""
        self.messages_in = Counter(
            "bot_messages_received_total", "Messages accepted into the queue", ["source"]
        )
        self.messages_screened = Counter(
            "bot_messages_screened_total", "Messages screened", ["outcome"]
        )
        self.duplicates = Counter(
            "bot_duplicate_messages_total", "Messages skipped because their id was already seen"
        )
        self.findings = Counter("bot_findings_total", "Findings per category", ["category"])
        self.actions = Counter(
            "bot_actions_total", "Actions taken, by action and outcome", ["action", "outcome"]
        )
        self.outbound = Counter(
            "bot_outbound_requests_total",
            "Calls to DingTalk, by endpoint and result",
            ["endpoint", "result"],
        )
        self.reconnects = Counter(
            "bot_stream_reconnects_total", "Stream connections opened after the first"
        )
        self.stream_connected = Gauge(
            "bot_stream_connected", "1 while the DingTalk stream websocket is open"
        )
        self.queue_depth = Gauge("bot_queue_depth", "Accepted messages not yet fully handled")
        self.in_flight = Gauge("bot_in_flight", "Messages being handled right now")
        self.spilled = Counter(
            "bot_spilled_total", "Messages written to the local spill queue (Redis unavailable)"
        )
        self.degraded = Gauge("bot_redis_degraded", "1 while Redis is unreachable")
        self.errors = Counter("bot_errors_total", "Errors by pipeline stage", ["stage"])
        self.dead_letters = Counter(
            "bot_dead_letters_total", "Messages given up after the maximum attempts"
        )
        self.rules_reloads = Counter(
            "bot_rules_reloads_total", "Rule-set reload attempts", ["outcome"]
        )
        self.rules_info = Gauge("bot_rules_info", "The rule-set version running", ["version"])
        self.screening_seconds = Histogram(
            "bot_screening_seconds", "Time to screen one message (worker thread)"
        )
        self.end_to_end_seconds = Histogram(
            "bot_end_to_end_seconds", "From accepted to every action done and recorded"
        )
        self.ack_seconds = Histogram(
            "bot_ack_seconds", "From frame received to durable enqueue (before the ACK)"
        )

    def families(self) -> Iterable[_Metric]:
        """Every metric family, in attribute order."""
        return (v for v in vars(self).values() if isinstance(v, _Metric))

    def render(self) -> str:
        """The Prometheus text exposition of every metric."""
        lines: list[str] = []
        for metric in self.families():
            lines.extend(metric.header())
            lines.extend(metric.samples())
        return "\n".join(lines) + "\n"

    def set_rules_version(self, version: str) -> None:
        """Report the running rule-set version as an info gauge."""
        self.rules_info.clear()
        self.rules_info.set(1, version=version)


# -- logging --------------------------------------------------------------------------------
# Fields a log call may attach with ``extra=``; anything else is dropped so a careless call
# cannot leak message text into the logs.
SAFE_FIELDS = frozenset(
    {
        "message_id",
        "conversation_id",
        "source",
        "case_id",
        "rules",
        "actions",
        "categories",
        "severity",
        "strikes",
        "attempts",
        "version",
        "replica",
        "endpoint",
        "status",
        "code",
        "delay",
        "count",
        "error",
        "stage",
        "elapsed_ms",
        "depth",
        "reason",
        "outcome",
        "settings",
        "url",
    }
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event, and whitelisted fields only."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record``; exception text is reduced to its type (it can quote data)."""
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key in SAFE_FIELDS:
            if key in record.__dict__:
                out[key] = record.__dict__[key]
        if record.exc_info and record.exc_info[0] is not None:
            out["exception"] = record.exc_info[0].__name__
        return json.dumps(out, ensure_ascii=False, default=str)


class _SdkScrubber(logging.Filter):
    """The SDK logs whole frames (with message text) on some paths; keep only its template."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("unknown message topic"):
            return False  # every SYSTEM ping is logged as "unknown" by 0.24.3: noise
        template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
        if not record.args:
            # f-strings ("error processing message: {e}", "failed, error={e}, response.text=")
            # carry their data after the first ':' or '='; keep only the words before it.
            cut = min((i for i in (template.find(":"), template.find("=")) if i >= 0), default=120)
            template = template[: min(cut, 120)]
        record.msg = template
        record.args = tuple("…" for _ in record.args) if isinstance(record.args, tuple) else ()
        record.exc_info = None
        return True


def configure_logging(level: str = "INFO") -> None:
    """JSON logs on stderr for the whole process; the SDK's loggers scrubbed and routed here."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    scrub_sdk_loggers()


def scrub_sdk_loggers() -> None:
    """Route ``dingtalk_stream.*`` loggers through ours with their arguments scrubbed.

    ``websockets`` logs every frame (message text included) at DEBUG, so its loggers are
    held at INFO whatever the root level is.
    """
    for name in ("websockets", "websockets.client", "urllib3"):
        logging.getLogger(name).setLevel(logging.INFO)
    for name in ("dingtalk_stream", "dingtalk_stream.client", "dingtalk_stream.handler"):
        logger = logging.getLogger(name)
        logger.handlers.clear()  # the SDK adds its own plain-text StreamHandler
        logger.propagate = True
        if not any(isinstance(f, _SdkScrubber) for f in logger.filters):
            logger.addFilter(_SdkScrubber())


# -- health ---------------------------------------------------------------------------------
class Health:
    """What /healthz and /readyz report; the app updates it, the HTTP handlers read it."""

    def __init__(self, replica: str) -> None:
        """Start not ready: ready only once rules, queue and intake are up."""
        self.replica = replica
        self.started_at = time.time()
        self.rules_version = ""
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
        """The health document (no secrets, no message data)."""
        return {
            "replica": self.replica,
            "rules_version": self.rules_version,
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


HEALTH_KEY = web.AppKey("health", Health)
METRICS_KEY = web.AppKey("metrics", Metrics)


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the event loop answers and no essential background task has died."""
    health = request.app[HEALTH_KEY]
    body = health.snapshot()
    return web.json_response(body, status=503 if health.fatal else 200)


async def readyz(request: web.Request) -> web.Response:
    """Readiness: rules loaded, consumer running, stream connected, queue not full."""
    health = request.app[HEALTH_KEY]
    body = health.snapshot()
    return web.json_response(body, status=503 if body["problems"] else 200)


async def metrics(request: web.Request) -> web.Response:
    """The Prometheus scrape endpoint."""
    text = request.app[METRICS_KEY].render()
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


def add_routes(app: web.Application, health: Health, registry: Metrics) -> None:
    """Mount /healthz, /readyz and /metrics on ``app``."""
    app[HEALTH_KEY] = health
    app[METRICS_KEY] = registry
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
