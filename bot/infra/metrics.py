"""Every metric the bot exports, on its own prometheus-client registry, with process metrics."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
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


class Metrics:
    """The bot's metric families as attributes; one registry per running bot.

    A registry of its own (not prometheus-client's global one) lets several bots, and the
    tests, live in one process without their counts mixing.
    """

    def __init__(self) -> None:
        """Create the registry, the process/platform/GC collectors and every family."""
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)  # process_resident_memory_bytes, process_cpu_seconds_total
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.messages_in = Counter(
            "bot_messages_received_total",
            "Messages accepted into the queue",
            ["source"],
            registry=r,
        )
        self.messages_screened = Counter(
            "bot_messages_screened_total", "Messages screened", ["outcome"], registry=r
        )
        self.duplicates = Counter(
            "bot_duplicate_messages_total",
            "Messages skipped because their id was already seen",
            registry=r,
        )
        self.findings = Counter(
            "bot_findings_total", "Findings per category", ["category"], registry=r
        )
        self.actions = Counter(
            "bot_actions_total",
            "Actions taken, by action and outcome",
            ["action", "outcome"],
            registry=r,
        )
        self.outbound = Counter(
            "bot_outbound_requests_total",
            "Calls to DingTalk, by endpoint and result",
            ["endpoint", "result"],
            registry=r,
        )
        self.reconnects = Counter(
            "bot_stream_reconnects_total", "Stream connections opened after the first", registry=r
        )
        self.stream_connected = Gauge(
            "bot_stream_connected", "1 while the DingTalk stream websocket is open", registry=r
        )
        self.queue_depth = Gauge(
            "bot_queue_depth", "Accepted messages not yet fully handled", registry=r
        )
        self.in_flight = Gauge("bot_in_flight", "Messages being handled right now", registry=r)
        self.spilled = Counter(
            "bot_spilled_total",
            "Messages written to the local spill queue (Redis unavailable)",
            registry=r,
        )
        self.degraded = Gauge("bot_redis_degraded", "1 while Redis is unreachable", registry=r)
        self.errors = Counter(
            "bot_errors_total", "Errors by stage (the one error funnel)", ["stage"], registry=r
        )
        self.dead_letters = Counter(
            "bot_dead_letters_total", "Messages given up after the maximum attempts", registry=r
        )
        self.rules_reloads = Counter(
            "bot_rules_reloads_total", "Rule-set reload attempts", ["outcome"], registry=r
        )
        self.rules_info = Gauge(
            "bot_rules_info", "The rule-set version running", ["version"], registry=r
        )
        self.screening_seconds = Histogram(
            "bot_screening_seconds",
            "Time to screen one message (worker thread)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.end_to_end_seconds = Histogram(
            "bot_end_to_end_seconds",
            "From accepted to every action done and recorded",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ack_seconds = Histogram(
            "bot_ack_seconds",
            "From frame received to durable enqueue (before the ACK)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

    def sample(self, name: str, **labels: str) -> float:
        """One sample's current value (0 when it was never recorded), e.g. for tests and the demo.

        ``name`` is the exposed sample name: ``bot_actions_total``, ``bot_queue_depth``.
        """
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def total(self, name: str) -> float:
        """The sum of every labelled series of sample ``name``."""
        return sum(
            sample.value
            for family in self.registry.collect()
            for sample in family.samples
            if sample.name == name
        )

    def set_rules_version(self, version: str) -> None:
        """Report the running rule-set version as an info-style gauge."""
        self.rules_info.clear()
        self.rules_info.labels(version=version).set(1)
