"""A small intent model trained once per session on the fixture data (tests/fixtures/intent)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.engine.intent.model import IntentModel
from bot.training.build import Plan, train
from tests.conftest import FIXTURE_RULES

INTENT_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "intent"
NAME = "intent-test"


INTENT_POLICY = f"""
intent:
  model: {NAME}
  advice: {{flag_at: 0.5, veto_when_reported: 0.9, title: Advice or a promise}}
  off_channel: {{flag_at: 0.5, veto_when_reported: 0.9, title: Leaving the recorded channel}}
"""


def rules_with_intent(directory: Path) -> Path:
    """The fixture rules with an ``intent:`` section naming the test model."""
    target = directory / "rules"
    if not target.exists():
        shutil.copytree(FIXTURE_RULES, target)
        with (target / "policy.yaml").open("a", encoding="utf-8") as policy:
            policy.write(INTENT_POLICY)
    return target


@pytest.fixture(scope="session")
def intent_rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return rules_with_intent(tmp_path_factory.mktemp("intent-rules"))


def plan(model_dir: Path, **changes: object) -> Plan:
    """A training plan over the fixture data, writing to ``model_dir``."""
    values: dict[str, object] = {
        "rules_dir": rules_with_intent(model_dir.parent),
        "data_dir": INTENT_FIXTURES / "data",
        "test_set": INTENT_FIXTURES / "test.jsonl",
        "model_dir": model_dir,
        "name": NAME,
    }
    values.update(changes)
    return Plan(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("intent-model")
    outcome = train(plan(directory), say=lambda _line: None)
    assert outcome.written
    return directory


@pytest.fixture
def model_copy(trained_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the trained model's files (tests may corrupt it)."""
    for path in trained_dir.iterdir():
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


@pytest.fixture(scope="session")
def fixture_model(trained_dir: Path) -> IntentModel:
    return IntentModel.load(trained_dir, NAME)
