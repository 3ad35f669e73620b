"""Metrics exposition, JSON logs that keep message text out, health and readiness."""

from __future__ import annotations

import logging
import sys

from bot.infra.ops import (
    Counter,
    Gauge,
    Health,
    Histogram,
    JsonFormatter,
    Metrics,
    scrub_sdk_loggers,
)


def test_counter_gauge_and_histogram_render_prometheus_text() -> None:
    counter = Counter("x_total", "help", ["kind"])
    counter.inc(kind="a")
    counter.inc(2, kind='b"q')
    gauge = Gauge("depth", "help")
    gauge.set(7)
    histogram = Histogram("latency_seconds", "help", buckets=(0.1, 1.0))
    histogram.observe(0.05)
    histogram.observe(0.5)
    histogram.observe(5)
    lines = counter.samples() + gauge.samples() + histogram.samples()
    assert 'x_total{kind="a"} 1' in lines
    assert 'x_total{kind="b\\"q"} 2' in lines
    assert "depth 7" in lines
    assert 'latency_seconds_bucket{le="0.1"} 1' in lines
    assert 'latency_seconds_bucket{le="1"} 2' in lines
    assert 'latency_seconds_bucket{le="+Inf"} 3' in lines
    assert "latency_seconds_count 3" in lines
    assert "latency_seconds_sum 5.55" in lines


def test_every_metric_family_has_help_and_type() -> None:
    metrics = Metrics()
    metrics.set_rules_version("abc")
    text = metrics.render()
    for family in metrics.families():
        assert f"# HELP {family.name} " in text
        assert f"# TYPE {family.name} {family.kind}" in text
    assert 'bot_rules_info{version="abc"} 1' in text


def test_json_log_keeps_whitelisted_fields_and_drops_anything_else() -> None:
    record = logging.LogRecord(
        "bot.runtime.lifecycle", logging.INFO, __file__, 1, "message flagged", (), None
    )
    record.message_id = "msg1"
    record.text = "客戶身份證 A123456(3)"  # a careless extra= must not reach the log
    try:
        raise ValueError("A123456(3)")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert '"message_id": "msg1"' in line
    assert "A123456" not in line
    assert '"exception": "ValueError"' in line


def test_sdk_loggers_are_scrubbed_of_frame_contents() -> None:
    scrub_sdk_loggers()
    logger = logging.getLogger("dingtalk_stream.client")
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Keep()
    logging.getLogger().addHandler(handler)
    try:
        logger.warning(
            "unknown callback message topic, topic=%s, message=%s", "t", {"text": "A123456(3)"}
        )
        logger.error("error processing message: A123456(3) leaked in an f-string")
        logger.warning("unknown message topic, topic=%s", "ping")
    finally:
        logging.getLogger().removeHandler(handler)
    assert all("A123456" not in line for line in seen)
    assert len(seen) == 2  # pings are dropped as noise
    assert logging.getLogger("websockets.client").level == logging.INFO


def test_readiness_lists_what_is_missing() -> None:
    health = Health("r1")
    health.stream_required = True
    assert set(health.problems()) == {
        "no rule set loaded",
        "queue consumer not running",
        "DingTalk stream not connected",
    }
    health.rules_version = "v"
    health.consumer_alive = True
    health.stream_connected = True
    assert health.problems() == []
    health.queue_max, health.queue_depth = 10, 10
    assert health.problems() == ["queue full"]
