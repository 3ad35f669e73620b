"""The model file is checked at load; scores are window maxima; phrases say what weighed most."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.domain import Category
from bot.engine.intent.model import IntentModel, IntentModelError
from tests.engine.intent.conftest import make_model

WEIGHTS = {
    Category.ADVICE: {"1:double": 40.0, "2:load the": 20.0, "3:load the boat": 40.0},
    Category.OFF_CHANNEL: {"1:discord": 60.0},
}


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return make_model(tmp_path, WEIGHTS)


def test_a_cue_scores_high_and_names_its_phrases(model_dir: Path) -> None:
    model = IntentModel.load(model_dir, "hand")
    text = "load the boat on this one"
    scores = model.score(text)
    advice = scores.get(Category.ADVICE)
    assert advice is not None
    assert advice.score > 0.9
    assert scores.score(Category.OFF_CHANNEL) < 0.1
    assert text[advice.phrases[0].start : advice.phrases[0].end] == "load the boat"
    assert model.version.startswith("hand@")


def test_a_cue_at_the_end_of_a_huge_message_counts_as_much_as_alone(model_dir: Path) -> None:
    model = IntentModel.load(model_dir, "hand")
    alone = model.score("dm me on discord").score(Category.OFF_CHANNEL)
    long = "ok " * 40_000 + "dm me on discord"  # 120 KB of filler, the cue last
    assert abs(model.score(long).score(Category.OFF_CHANNEL) - alone) < 0.05


def test_empty_emoji_and_mixed_script_messages_score_without_error(model_dir: Path) -> None:
    model = IntentModel.load(model_dir, "hand")
    for text in ("", "😀🚀📈", "呢隻 will double 🚀", "\u034b\ufeff"):
        scores = model.score(text)
        assert set(scores.by_label) == {"advice", "off_channel", "pii", "reported"}


def test_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IntentModelError, match=r"intent model file missing: .*hand\.json"):
        IntentModel.load(tmp_path, "hand")


def test_a_corrupt_weights_file_is_refused_by_its_hash(model_dir: Path) -> None:
    weights = model_dir / "hand.npz"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(IntentModelError, match="does not match its description"):
        IntentModel.load(model_dir, "hand")


def test_weights_built_for_other_features_are_refused(model_dir: Path) -> None:
    meta_path = model_dir / "hand.json"
    meta = json.loads(meta_path.read_text())
    meta["feature_version"] = "something-older"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(IntentModelError, match="retrain with `python -m bot train`"):
        IntentModel.load(model_dir, "hand")


def test_a_description_that_is_not_one_is_refused(model_dir: Path) -> None:
    (model_dir / "hand.json").write_text("[1, 2]")
    with pytest.raises(IntentModelError, match="not an intent model description"):
        IntentModel.load(model_dir, "hand")
