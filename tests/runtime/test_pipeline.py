"""The pipeline with fakes around it: decisions, strikes, masking, retries, the error funnel."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.audit import MemoryAuditTrail
from bot.domain import Action, Category, Message, Verdict
from bot.engine.screener import Screener
from bot.infra.health import Health
from bot.infra.logs import JsonFormatter
from bot.infra.metrics import Metrics
from bot.infra.queue import Envelope
from bot.infra.queue.sqlite import SqliteQueue
from bot.infra.state import MemoryState
from bot.infra.supervisor import Supervisor
from bot.runtime.notices import Delivery, Notice
from bot.runtime.pipeline import Pipeline, case_id_for
from bot.runtime.reload import RulesManager
from bot.runtime.rulesets import RuleSet
from bot.runtime.settings import REPO, Settings

HKID_TEXT = "客戶身份證號碼 K765432(4)，麻煩幫手開戶"
ADVICE_TEXT = "I would buy 0700.HK here, strong buy"


class FakeNotifier:
    """Records what would be sent; can be told to fail."""

    def __init__(self) -> None:
        self.warnings: list[Notice] = []
        self.escalations: list[Notice] = []
        self.told: list[tuple[str, str]] = []
        self.fail = False

    async def warn(self, notice: Notice) -> Delivery:
        self.warnings.append(notice)
        return Delivery(ok=not self.fail, channel="group", detail="down" if self.fail else "")

    async def escalate(self, notice: Notice) -> Delivery:
        self.escalations.append(notice)
        return Delivery(ok=not self.fail, channel="compliance")

    async def tell_compliance(self, title: str, text: str) -> bool:
        self.told.append((title, text))
        return True

    async def flush(self) -> None:
        return None


class BrokenScreener:
    """A screener whose every call fails (a bug, a regex blow-up)."""

    def __init__(self, real: Screener) -> None:
        self.rulebook = real.rulebook
        self.policy = real.policy
        self.rules_version = real.rules_version
        self.names = None

    def screen(self, text: str) -> Verdict:
        raise ValueError(f"cannot screen {text}")


@dataclasses.dataclass
class Rig:
    pipeline: Pipeline
    queue: SqliteQueue
    notifier: FakeNotifier
    archive: MemoryAuditTrail
    metrics: Metrics
    rules: RulesManager

    async def run(self, message: Message) -> None:
        await self.queue.put(Envelope(message, time.time()))
        (entry,) = await self.queue.fetch(1, 0)
        await self.pipeline.handle(entry)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    settings = Settings(data_dir=tmp_path, max_attempts=2, rules_dir=REPO / "rules")
    metrics = Metrics()
    supervisor = Supervisor(metrics, Health("t"))
    rules = RulesManager(REPO / "rules", supervisor=supervisor, replica_id="t", work_dir=tmp_path)
    await rules.load_initial()
    queue = await SqliteQueue(tmp_path / "q.sqlite3").open()
    notifier = FakeNotifier()
    archive = MemoryAuditTrail()
    pipeline = Pipeline(
        settings=settings,
        rules=rules,
        state=MemoryState(lease_seconds=60, done_ttl_seconds=600),
        queue=queue,
        notifier=notifier,
        archive=archive,
        supervisor=supervisor,
    )
    yield Rig(pipeline, queue, notifier, archive, metrics, rules)
    await queue.close()


def message(n: int, text: str, sender: str = "staff1") -> Message:
    return Message(
        id=f"m{n}",
        text=text,
        conversation_id="cidDesk==",
        sender_id=sender,
        sender_staff_id=sender,
    )


async def test_pii_message_is_recorded_then_warned_and_escalated(rig: Rig) -> None:
    await rig.run(message(1, HKID_TEXT))
    (recorded,) = rig.archive.messages
    _, verdict, decision, case_id = recorded
    assert decision.actions == (Action.LOG, Action.WARN, Action.REDACT, Action.ESCALATE)
    assert verdict.model_version.startswith("intent-linear@")  # every record says which model
    (warning,) = rig.notifier.warnings
    assert warning.redacted == "客戶身份證號碼 K765***(*)，麻煩幫手開戶"
    assert warning.rules[0].message_en.startswith("Do not post Hong Kong identity")
    assert rig.notifier.escalations[0].case_id == case_id
    assert await rig.queue.depth() == 0


async def test_third_flagged_message_in_the_window_escalates_the_sender(rig: Rig) -> None:
    for n in range(3):
        await rig.run(message(n, ADVICE_TEXT))
    assert len(rig.notifier.warnings) == 3
    (escalation,) = rig.notifier.escalations  # advice/medium alone only warns
    assert escalation.repeat_offender
    assert escalation.strikes == 3
    await rig.run(message(9, ADVICE_TEXT, sender="someone-else"))
    assert len(rig.notifier.escalations) == 1  # strikes are per sender


async def test_clean_message_is_recorded_without_actions(rig: Rig) -> None:
    await rig.run(message(1, "lunch at 12:30?"))
    assert len(rig.archive.messages) == 1
    assert rig.archive.actions == []
    assert rig.notifier.warnings == []


async def test_undelivered_action_is_recorded_as_failed_and_not_retried(rig: Rig) -> None:
    rig.notifier.fail = True
    await rig.run(message(1, HKID_TEXT))
    assert {(a[1], a[3]) for a in rig.archive.actions} == {
        (Action.WARN, "failed"),
        (Action.ESCALATE, "failed"),
    }
    assert rig.metrics.sample("bot_actions_total", action="warn", outcome="failed") == 1
    assert await rig.queue.depth() == 0


async def test_screening_failure_retries_then_dead_letters_and_tells_compliance(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    real = rig.rules.current
    rig.rules._current = RuleSet(BrokenScreener(real.screener), real.notes)  # type: ignore[arg-type]
    caplog.set_level(logging.INFO)
    await rig.queue.put(Envelope(message(1, HKID_TEXT), time.time()))
    for _ in range(2):
        (entry,) = await rig.queue.fetch(1, 0)
        await rig.pipeline.handle(entry)
    assert await rig.queue.fetch(1, 0) == []
    assert await rig.queue.dead_letters() == 1
    assert rig.metrics.total("bot_dead_letters_total") == 1
    assert rig.metrics.sample("bot_errors_total", stage="screen") == 2
    ((_, text),) = rig.notifier.told
    assert "m1" in text
    assert "K765432" not in text
    logged = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "K765432" not in logged
    # Fixed: the lease was released, so the message can still be handled.
    rig.rules._current = real
    await rig.run(message(1, HKID_TEXT))
    assert len(rig.archive.messages) == 1


def test_case_ids_are_stable_for_a_message(tmp_path: Path) -> None:
    first = case_id_for(message(1, "x"), 1_700_000_000)
    assert first == case_id_for(message(1, "y"), 1_700_000_000)
    assert first != case_id_for(message(2, "x"), 1_700_000_000)
    assert first.startswith("C20231115-")


class FailingNames:
    """A name finder that breaks (a model bug): rules must still count, the problem reported."""

    status = "broken on purpose"

    def find(self, text: str) -> list[object]:
        raise RuntimeError(f"cannot read {text}")


async def test_a_screening_problem_is_reported_and_the_message_still_handled(rig: Rig) -> None:
    real = rig.rules.current
    screener = Screener(real.screener.rulebook, FailingNames(), real.screener.lexicon)  # type: ignore[arg-type]
    rig.rules._current = RuleSet.build(screener)
    await rig.run(message(1, HKID_TEXT))
    assert rig.metrics.sample("bot_errors_total", stage="screening") == 1
    (recorded,) = rig.archive.messages
    assert recorded[1].errors == ("name detection failed: RuntimeError",)
    assert len(rig.notifier.warnings) == 1  # the HKID rule still counted


async def test_a_broken_model_file_leaves_the_bot_screening_with_rules_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    models = tmp_path / "models"
    shutil.copytree(REPO / "models", models)
    weights = models / "intent" / "intent-linear.npz"
    weights.write_bytes(weights.read_bytes()[:1000])  # a truncated copy
    monkeypatch.setenv("BOT_MODELS_DIR", str(models))
    supervisor = Supervisor(Metrics(), Health("t"))
    rules = RulesManager(REPO / "rules", supervisor=supervisor, replica_id="t", work_dir=tmp_path)
    caplog.set_level(logging.INFO)
    await rules.load_initial()
    screener = rules.current.screener
    assert screener.intent is None
    assert supervisor.health.model_version == ""
    assert any(r.getMessage() == "intent model not loaded" for r in caplog.records)
    assert screener.screen(HKID_TEXT).categories == (Category.PII,)  # rules still screen
