"""Readiness lists what is missing; an essential task's death fails it."""

from __future__ import annotations

from bot.infra.health import Health


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


def test_a_dead_essential_task_fails_readiness() -> None:
    health = Health("r1")
    health.rules_version, health.consumer_alive = "v", True
    health.fatal = "consumer: RuntimeError"
    assert health.problems() == ["essential task died (consumer: RuntimeError)"]
