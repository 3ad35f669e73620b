"""The Prometheus exposition: every metric name the bot has always had, plus process metrics."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from bot.infra.metrics import Metrics

# The names dashboards and alerts were built on: they must not change.
NAMES = {
    "bot_messages_received_total": "counter",
    "bot_messages_screened_total": "counter",
    "bot_duplicate_messages_total": "counter",
    "bot_findings_total": "counter",
    "bot_actions_total": "counter",
    "bot_outbound_requests_total": "counter",
    "bot_stream_reconnects_total": "counter",
    "bot_stream_connected": "gauge",
    "bot_queue_depth": "gauge",
    "bot_in_flight": "gauge",
    "bot_spilled_total": "counter",
    "bot_redis_degraded": "gauge",
    "bot_errors_total": "counter",
    "bot_dead_letters_total": "counter",
    "bot_rules_reloads_total": "counter",
    "bot_rules_info": "gauge",
    "bot_screening_seconds": "histogram",
    "bot_end_to_end_seconds": "histogram",
    "bot_ack_seconds": "histogram",
}


def exposed(metrics: Metrics) -> dict[str, str]:
    """{sample name: family type} as a scraper reads the text."""
    out: dict[str, str] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            out[sample.name] = family.type
    return out


def test_every_metric_keeps_its_name_and_type() -> None:
    metrics = Metrics()
    metrics.messages_in.labels(source="dingtalk").inc()
    metrics.messages_screened.labels(outcome="clean").inc()
    metrics.findings.labels(category="pii").inc()
    metrics.actions.labels(action="warn", outcome="sent").inc()
    metrics.outbound.labels(endpoint="accessToken", result="ok").inc()
    metrics.errors.labels(stage="screen").inc()
    metrics.rules_reloads.labels(outcome="applied").inc()
    metrics.set_rules_version("abc")
    samples = exposed(metrics)
    for name, kind in NAMES.items():
        sample = f"{name}_count" if kind == "histogram" else name
        assert sample in samples, name
        assert samples[sample] == kind, name


def test_process_metrics_are_exported() -> None:
    samples = exposed(Metrics())
    assert "process_resident_memory_bytes" in samples
    assert "process_cpu_seconds_total" in samples
    assert "python_info" in samples


def test_labels_are_escaped_and_histograms_bucketed() -> None:
    metrics = Metrics()
    metrics.errors.labels(stage='b"q').inc(2)
    for value in (0.0005, 0.2, 50):
        metrics.screening_seconds.observe(value)
    text = metrics.render().decode()
    assert 'bot_errors_total{stage="b\\"q"} 2.0' in text
    assert 'bot_screening_seconds_bucket{le="0.001"} 1.0' in text
    assert 'bot_screening_seconds_bucket{le="0.25"} 2.0' in text
    assert 'bot_screening_seconds_bucket{le="+Inf"} 3.0' in text
    assert metrics.sample("bot_screening_seconds_count") == 3


def test_rules_info_shows_only_the_running_version() -> None:
    metrics = Metrics()
    metrics.set_rules_version("old")
    metrics.set_rules_version("new")
    assert metrics.sample("bot_rules_info", version="new") == 1
    assert metrics.sample("bot_rules_info", version="old") == 0


def test_two_bots_in_one_process_count_apart() -> None:
    first, second = Metrics(), Metrics()
    first.duplicates.inc()
    assert first.total("bot_duplicate_messages_total") == 1
    assert second.total("bot_duplicate_messages_total") == 0
