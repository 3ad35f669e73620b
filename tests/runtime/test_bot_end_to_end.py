"""End to end: the real dingtalk-stream SDK against the local simulator, the real screener."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from bot.audit import MemoryAuditTrail
from bot.cli.run import _ingest
from bot.domain import Action, Message
from bot.infra.logs import JsonFormatter
from bot.infra.queue import Envelope
from bot.infra.queue.redis_stream import RedisQueue
from bot.runtime.reload import replica_versions
from bot.runtime.settings import REPO
from bot.simulator import SimulatorThread, frame_data
from tests.support.bot import (
    ADVICE,
    CLEAN,
    COMPLIANCE,
    DESK,
    REDIS_URL,
    RISKY,
    RedisServer,
    apush,
    bot_settings,
    eventually,
    redis_client,
    running_bot,
)


def _frame(sim: SimulatorThread, text: str, **options: object) -> tuple[dict[str, object], str]:
    frame = sim.simulator.group_message_frame(
        DESK, text, conversation_title="HK Desk - Equities", **options
    )
    return frame, str(frame_data(frame)["msgId"])


def _acked_frame_ids(sim: SimulatorThread) -> set[str]:
    return {a["headers"]["messageId"] for a in sim.acks() if a.get("code") == 200}


async def test_risky_message_warns_in_group_and_escalates_when_it_holds_an_hkid(
    sim: SimulatorThread, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    archive = MemoryAuditTrail()
    async with running_bot(bot_settings(sim, tmp_path), archive) as bot:
        assert bot.pipeline is not None
        message_id = await apush(sim, RISKY, sender_staff_id="staff004", sender_nick="Dave Wong")
        assert await eventually(lambda: bot.pipeline is not None and bot.pipeline.handled == 1)

    replies = sim.session_replies(DESK)
    assert len(replies) == 1
    reply = replies[0]
    assert reply["msgtype"] == "markdown"
    assert reply["at"]["atUserIds"] == ["staff004"]
    warning = reply["markdown"]["text"]
    assert "@staff004" in warning
    assert "Hong Kong identity card number" in warning
    assert "香港身份證" in warning  # bilingual: the rule's Traditional Chinese message
    assert "K765432" not in warning  # never repeats the personal data it found

    escalations = sim.group_messages(COMPLIANCE)
    assert len(escalations) == 1
    case = escalations[0]["param"]
    assert escalations[0]["msg_key"] == "sampleMarkdown"
    assert "Dave Wong" in case["text"]
    assert DESK in case["text"]
    assert "`hkid`" in case["text"]
    assert "HIGH" in case["text"]
    assert "K765***(*)" in case["text"]  # the redacted copy
    assert "K765432" not in case["text"]
    (recorded,) = archive.messages
    assert recorded[0].id == message_id
    assert recorded[3] in case["title"]  # the case id
    assert {(a[1], a[3]) for a in archive.actions} == {
        (Action.WARN, "sent"),
        (Action.ESCALATE, "sent"),
    }
    assert [a["code"] for a in sim.acks()] == [200]

    # Structured logs never carry message text or the personal data found in it.
    formatter = JsonFormatter()
    logged = "\n".join(formatter.format(r) for r in caplog.records)
    assert "K765432" not in logged
    assert "開戶" not in logged
    assert message_id in logged  # ids are fine, and useful


async def test_clean_message_yields_no_warning_and_no_escalation(
    sim: SimulatorThread, tmp_path: Path
) -> None:
    archive = MemoryAuditTrail()
    async with running_bot(bot_settings(sim, tmp_path), archive) as bot:
        await apush(sim, CLEAN)
        assert await eventually(lambda: bot.pipeline is not None and bot.pipeline.handled == 1)
        await asyncio.sleep(0.3)  # give a wrong warning the time to show up
    assert sim.session_replies() == []
    assert sim.group_messages() == []
    assert len(archive.messages) == 1  # clean messages are still on record
    assert archive.actions == []


async def test_duplicate_message_is_acted_on_once_when_delivered_twice(
    sim: SimulatorThread, tmp_path: Path
) -> None:
    archive = MemoryAuditTrail()
    async with running_bot(bot_settings(sim, tmp_path), archive) as bot:
        assert bot.pipeline is not None
        message_id = await apush(sim, RISKY)
        assert await eventually(lambda: bot.pipeline is not None and bot.pipeline.handled == 1)
        await apush(sim, RISKY, msg_id=message_id)  # DingTalk (or a replica) delivers again
        assert await eventually(lambda: bot.pipeline is not None and bot.pipeline.finished == 2)
        await asyncio.sleep(0.3)
        assert bot.metrics.total("bot_duplicate_messages_total") == 1
    assert len(sim.session_replies(DESK)) == 1
    assert len(sim.group_messages(COMPLIANCE)) == 1
    assert len(archive.messages) == 1


async def test_nothing_acknowledged_is_lost_when_the_socket_drops_mid_stream(
    sim: SimulatorThread, tmp_path: Path
) -> None:
    archive = MemoryAuditTrail()
    frames = [_frame(sim, RISKY if i % 2 else CLEAN) for i in range(60)]

    def play() -> None:
        for index, (frame, _) in enumerate(frames):
            if index == 30:
                sim.drop_connections()  # abrupt TCP drop, code 1006
            sim.push_frame(frame)  # queued by the simulator while no socket is open
            time.sleep(0.002)

    async with running_bot(bot_settings(sim, tmp_path), archive) as bot:
        assert bot.intake is not None
        await asyncio.to_thread(play)
        acked = await asyncio.to_thread(lambda: sim.wait_for(lambda: len(sim.acks()) >= 55, 15))
        assert acked
        assert await eventually(lambda: len(archive.messages) >= len(_acked_frame_ids(sim)), 15)
        assert bot.intake.connections >= 2
        assert bot.metrics.total("bot_stream_reconnects_total") >= 1

    acked_ids = _acked_frame_ids(sim)
    by_frame = {frame["headers"]["messageId"]: msg_id for frame, msg_id in frames}
    handled = Counter(m[0].id for m in archive.messages)
    assert acked_ids, "nothing was acknowledged"
    for frame_id in acked_ids:
        assert handled[by_frame[frame_id]] == 1  # every ACKed message handled exactly once
    assert max(handled.values()) == 1


async def test_burst_of_1000_messages_is_all_screened_and_each_acted_on_once(
    sim: SimulatorThread, tmp_path: Path, redis_prefix: str
) -> None:
    archive = MemoryAuditTrail()
    texts = [RISKY, CLEAN, ADVICE]
    frames = [
        _frame(sim, texts[i % 3], sender_staff_id=f"staff{i % 7}", sender_nick=f"Trader {i % 7}")
        for i in range(1000)
    ]
    settings = bot_settings(
        sim, tmp_path, redis_url=REDIS_URL, key_prefix=redis_prefix, warn_interval_seconds=0.5
    )
    async with running_bot(settings, archive) as bot:
        started = time.monotonic()

        def play() -> None:
            for frame, _ in frames:
                sim.push_frame(frame)

        await asyncio.to_thread(play)
        assert await eventually(
            lambda: bot.pipeline is not None and bot.pipeline.handled == 1000, 90
        )
        elapsed = time.monotonic() - started
        assert bot.metrics.total("bot_messages_screened_total") == 1000

    ids = [m[0].id for m in archive.messages]
    assert len(ids) == 1000
    assert set(ids) == {msg_id for _, msg_id in frames}
    flagged = {m[0].id for m in archive.messages if m[1].flagged}
    assert len(flagged) == 667  # every RISKY and ADVICE message
    warnings = Counter(a[0] for a in archive.actions if a[1] is Action.WARN and a[3] == "sent")
    assert set(warnings) == flagged
    assert max(warnings.values()) == 1  # each acted on once
    # Case ids in the compliance group: every escalated message exactly once.
    escalated = {a[2] for a in archive.actions if a[1] is Action.ESCALATE and a[3] == "sent"}
    texts_sent = "\n".join(m["param"]["text"] for m in sim.group_messages(COMPLIANCE))
    for case_id in escalated:
        assert texts_sent.count(f"{case_id}") == 1
    # Aggregation: a burst yields a handful of summaries, not hundreds of warnings.
    replies = sim.session_replies(DESK)
    assert len(replies) <= elapsed / 0.5 + 3
    assert all(r["at"]["atUserIds"] for r in replies)


async def test_redis_restarted_mid_run_degrades_then_recovers_without_loss(
    sim: SimulatorThread, tmp_path: Path, private_redis: RedisServer
) -> None:
    archive = MemoryAuditTrail()
    settings = bot_settings(sim, tmp_path, redis_url=private_redis.url, key_prefix="rr")
    async with running_bot(settings, archive) as bot:
        assert bot.pipeline is not None
        assert bot.redis_link is not None
        link = bot.redis_link
        pipeline = bot.pipeline
        first = [await apush(sim, RISKY if i % 2 else CLEAN) for i in range(10)]
        assert await eventually(lambda: pipeline.handled == 10)

        await asyncio.to_thread(private_redis.stop)
        during = [await apush(sim, RISKY if i % 2 else CLEAN) for i in range(10)]
        assert await eventually(lambda: pipeline.handled == 20, 20)  # screened while degraded
        assert not link.up
        assert bot.metrics.sample("bot_redis_degraded") == 1
        assert bot.metrics.total("bot_spilled_total") >= 1
        assert bot.health.snapshot()["redis"] == "degraded"

        await asyncio.to_thread(private_redis.start)
        assert await eventually(lambda: link.up, 20)
        after = [await apush(sim, RISKY if i % 2 else CLEAN) for i in range(10)]
        assert await eventually(lambda: pipeline.handled == 30, 20)
        assert bot.metrics.sample("bot_redis_degraded") == 0
        # A redelivery of a message handled during the outage is still recognised.
        await apush(sim, RISKY, msg_id=during[1])
        assert await eventually(lambda: pipeline.finished == 31)

        client = await redis_client(private_redis.url)
        try:
            marks = [await client.get(f"rr:seen:{m}") for m in during]
        finally:
            await client.aclose()
        assert marks == ["done"] * 10  # offline dedupe marks replayed into Redis

    handled = Counter(m[0].id for m in archive.messages)
    assert set(handled) == set(first + during + after)
    assert max(handled.values()) == 1
    assert len(sim.session_replies(DESK)) >= 1


async def test_broken_rule_set_is_rejected_and_compliance_told_while_the_last_good_runs(
    sim: SimulatorThread, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    settings = bot_settings(sim, tmp_path / "data", rules_dir=rules, rules_poll_seconds=0.1)
    archive = MemoryAuditTrail()
    async with running_bot(settings, archive) as bot:
        assert bot.rules is not None
        good = bot.rules.current.version
        target = rules / "advice" / "guaranteed-return.yaml"
        original = target.read_text(encoding="utf-8")
        target.write_text(original.replace("severity: high", "severity: extreme"), "utf-8")
        assert await eventually(
            lambda: bot.metrics.sample("bot_rules_reloads_total", outcome="rejected") == 1
        )
        assert bot.rules.current.version == good
        assert await eventually(lambda: len(sim.group_messages(COMPLIANCE)) == 1)
        notice = sim.group_messages(COMPLIANCE)[0]["param"]["text"]
        assert "Rule update rejected" in notice
        assert "guaranteed-return.yaml" in notice
        assert good in notice
        # Screening goes on with the last good set.
        await apush(sim, RISKY)
        assert await eventually(lambda: bot.pipeline is not None and bot.pipeline.handled == 1)

        # A valid change is applied without a restart: a new term becomes a finding.
        target.write_text(original, "utf-8")
        extra = rules / "off_channel" / "move-to-line.yaml"
        assert await eventually(
            lambda: bot.metrics.sample("bot_rules_reloads_total", outcome="unchanged") >= 1, 5
        )
        extra.write_text(
            extra.read_text("utf-8").replace("severity: high", "severity: medium"), "utf-8"
        )
        assert await eventually(
            lambda: bot.rules is not None and bot.rules.current.version != good
        )
        assert bot.health.rules_version == bot.rules.current.version
        assert f'version="{bot.rules.current.version}"' in bot.metrics.render().decode()


async def test_new_rule_set_reaches_every_replica_over_redis(
    sim: SimulatorThread, tmp_path: Path, redis_prefix: str
) -> None:
    dirs = []
    for name in ("a", "b"):
        rules = tmp_path / name / "rules"
        shutil.copytree(REPO / "rules", rules)
        dirs.append(rules)
    common = {"redis_url": REDIS_URL, "key_prefix": redis_prefix, "rules_poll_seconds": 0.1}
    settings_a = bot_settings(sim, tmp_path / "a" / "data", rules_dir=dirs[0], **common)
    settings_b = bot_settings(sim, tmp_path / "b" / "data", rules_dir=dirs[1], **common)
    async with running_bot(settings_a) as a, running_bot(settings_b) as b:
        assert a.rules is not None
        assert b.rules is not None
        old = a.rules.current.version
        assert b.rules.current.version == old
        await asyncio.sleep(0.3)  # both subscribed
        target = dirs[0] / "off_channel" / "move-to-line.yaml"
        target.write_text(
            target.read_text("utf-8").replace("severity: high", "severity: medium"), "utf-8"
        )
        assert await eventually(lambda: a.rules is not None and a.rules.current.version != old)
        new = a.rules.current.version
        assert await eventually(lambda: b.rules is not None and b.rules.current.version == new)
        client = await redis_client()
        try:
            assert await eventually_async(
                lambda: replica_versions(client, redis_prefix),
                {settings_a.replica_id: new, settings_b.replica_id: new},
            )
        finally:
            await client.aclose()


async def eventually_async(fetch: object, expected: object, limit: float = 5.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await fetch() == expected:  # type: ignore[operator]
            return True
        await asyncio.sleep(0.05)
    return False


async def test_http_ingest_feeds_the_same_pipeline_and_escalates(
    sim: SimulatorThread, tmp_path: Path
) -> None:
    token = "t" * 32
    archive = MemoryAuditTrail()
    async with running_bot(bot_settings(sim, tmp_path, ingest_token=token), archive) as bot:
        url = f"http://127.0.0.1:{bot.http_port}/v1/messages"
        batch = {
            "messages": [
                {
                    "id": "archive-1",
                    "text": RISKY,
                    "conversation_id": DESK,
                    "sender_id": "staff009",
                    "sender_name": "Ivy Ng",
                    "session_webhook": "http://evil.example/steal",  # ignored
                },
                {"id": "archive-2", "text": CLEAN, "conversation_id": DESK},
                {"id": "", "text": "no id"},
            ]
        }
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=batch) as response:
                assert response.status == 401
            headers = {"Authorization": f"Bearer {token}"}
            async with http.post(url, json=batch, headers=headers) as response:
                assert response.status == 202
                body = await response.json()
            async with http.get(f"http://127.0.0.1:{bot.http_port}/readyz") as response:
                assert response.status == 200
        assert body["accepted"] == 2
        assert body["rejected"][0]["index"] == 2
        assert await eventually(lambda: bot.pipeline is not None and bot.pipeline.handled == 2)
        await asyncio.sleep(0.2)
        assert bot.metrics.sample("bot_messages_received_total", source="ingest") == 2
    # No sessionWebhook: the warning goes to the group through groupMessages/send.
    warnings = sim.group_messages(DESK)
    assert len(warnings) == 1
    assert "K765432" not in warnings[0]["param"]["text"]
    assert len(sim.group_messages(COMPLIANCE)) == 1
    assert {m[0].source for m in archive.messages} == {"ingest"}


async def test_metrics_and_health_endpoints_report_the_pipeline(
    sim: SimulatorThread, tmp_path: Path
) -> None:
    async with running_bot(bot_settings(sim, tmp_path)) as bot:
        await apush(sim, RISKY)
        assert await eventually(lambda: bot.pipeline is not None and bot.pipeline.handled == 1)
        base = f"http://127.0.0.1:{bot.http_port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/metrics") as response:
                assert response.status == 200
                text = await response.text()
            async with http.get(f"{base}/healthz") as response:
                health = await response.json()
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 200
    assert 'bot_messages_received_total{source="dingtalk"} 1' in text
    assert 'bot_findings_total{category="pii"} 1' in text
    assert 'bot_actions_total{action="warn",outcome="sent"} 1' in text
    assert "bot_end_to_end_seconds_count 1" in text
    assert "bot_screening_seconds_bucket" in text
    assert "bot_queue_depth" in text
    assert "bot_stream_reconnects_total 0" in text
    assert health["stream_connected"] is True
    assert health["rules_version"]


async def test_a_dead_consumer_fails_readiness_and_is_counted_once(
    sim: SimulatorThread, tmp_path: Path
) -> None:
    async with running_bot(bot_settings(sim, tmp_path)) as bot:
        assert bot.pipeline is not None

        def broken(item: object) -> None:  # a bug in the consumer loop itself
            raise RuntimeError("consumer bug")

        bot.pipeline._start = broken  # type: ignore[method-assign]
        await apush(sim, CLEAN)
        assert await eventually(lambda: bot.health.fatal != "")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{bot.http_port}/readyz") as response:
                assert response.status == 503
                body = await response.json()
            async with http.get(f"http://127.0.0.1:{bot.http_port}/healthz") as response:
                assert response.status == 503
        assert "essential task died (consumer: RuntimeError)" in body["problems"]
        assert bot.metrics.sample("bot_errors_total", stage="consumer") == 1


async def test_graceful_shutdown_drains_in_flight_work(
    sim: SimulatorThread, tmp_path: Path
) -> None:
    archive = MemoryAuditTrail()
    async with running_bot(bot_settings(sim, tmp_path), archive) as bot:
        sim.faults.delay = 0.6  # DingTalk is slow: the warning is still in flight at SIGTERM
        await apush(sim, RISKY)
        assert await eventually(lambda: bot.metrics.sample("bot_in_flight") == 1)
    # bot.stop() has returned: the in-flight message finished, its actions were delivered.
    assert len(sim.session_replies(DESK)) == 1
    assert len(sim.group_messages(COMPLIANCE)) == 1
    assert {a[3] for a in archive.actions} == {"sent"}


async def test_accepted_message_survives_a_crash_before_handling_in_embedded_mode(
    sim: SimulatorThread, tmp_path: Path
) -> None:
    settings = bot_settings(sim, tmp_path, drain_seconds=0.2)
    hang = threading.Event()
    async with running_bot(settings) as first:
        assert first.pipeline is not None

        async def stuck(entry: object) -> None:  # the process dies before handling it
            await asyncio.to_thread(hang.wait, 5)

        first.pipeline.handle = stuck  # type: ignore[method-assign]
        await apush(sim, RISKY)
        assert await asyncio.to_thread(sim.wait_for, lambda: len(sim.acks()) == 1)
    hang.set()
    assert sim.session_replies() == []  # nothing was done about it yet, but it was ACKed

    archive = MemoryAuditTrail()
    async with running_bot(settings, archive) as second:
        assert await eventually(
            lambda: second.pipeline is not None and second.pipeline.handled == 1
        )
    assert len(archive.messages) == 1
    assert len(sim.session_replies(DESK)) == 1


async def test_entry_left_by_a_dead_replica_is_taken_over(
    sim: SimulatorThread, tmp_path: Path, redis_prefix: str
) -> None:
    client = await redis_client()
    dead = RedisQueue(client, prefix=redis_prefix, consumer="dead-replica", claim_idle_seconds=1)
    await dead.ensure_group()
    await dead.put(Envelope(Message(id="orphan-1", text=RISKY, conversation_id=DESK), time.time()))
    assert len(await dead.fetch(10, 0)) == 1  # fetched, then the replica "died"
    await client.aclose()

    archive = MemoryAuditTrail()
    settings = bot_settings(
        sim, tmp_path, redis_url=REDIS_URL, key_prefix=redis_prefix, claim_idle_seconds=0.5
    )
    async with running_bot(settings, archive) as bot:
        assert await eventually(lambda: bot.pipeline is not None and bot.pipeline.handled == 1, 10)
    assert [m[0].id for m in archive.messages] == ["orphan-1"]


def test_frames_carry_the_message_ids_the_bot_dedupes_on(sim: SimulatorThread) -> None:
    frame, message_id = _frame(sim, CLEAN)
    assert json.loads(str(frame["data"]))["msgId"] == message_id


async def test_ingest_command_sends_a_screen_file_through_the_pipeline(
    sim: SimulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = "t" * 32
    export = tmp_path / "export.jsonl"
    lines = [
        {"id": f"x{n}", "text": RISKY if n % 2 else CLEAN, "conversation_id": DESK}
        for n in range(5)
    ]
    export.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in lines) + "\nnot json\n",
        encoding="utf-8",
    )
    archive = MemoryAuditTrail()
    async with running_bot(bot_settings(sim, tmp_path, ingest_token=token), archive) as bot:
        url = f"http://127.0.0.1:{bot.http_port}"
        status = await _ingest(export, url, token, 2)
        assert await eventually(lambda: bot.pipeline is not None and bot.pipeline.handled == 5)
    assert status == 1  # one bad line
    err = capsys.readouterr().err
    assert "export.jsonl:6: invalid JSON" in err
    assert sorted(m[0].id for m in archive.messages) == [f"x{n}" for n in range(5)]


async def test_server_disconnect_reconnects_promptly_and_keeps_every_message(
    sim: SimulatorThread, tmp_path: Path
) -> None:
    archive = MemoryAuditTrail()
    async with running_bot(bot_settings(sim, tmp_path), archive) as bot:
        assert bot.intake is not None
        before = [await apush(sim, CLEAN) for _ in range(3)]
        await asyncio.to_thread(sim.ping)  # SYSTEM ping: ACKed by the SDK, not logged as noise
        await asyncio.to_thread(sim.send_disconnect, 0.2)  # DingTalk's "disconnect", then close
        after = [await apush(sim, CLEAN) for _ in range(3)]  # held by the gateway meanwhile
        assert await eventually(lambda: len(archive.messages) == 6, 10)
        assert bot.intake.connections == 2
    assert {m[0].id for m in archive.messages} == set(before + after)
