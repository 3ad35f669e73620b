"""`python -m bot train`: deterministic, judged on the test set, never replaces a better model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.cli import main
from bot.domain import Category
from bot.engine.intent.model import IntentModel
from bot.training.build import train
from bot.training.data import DataError, read_labelled, split
from tests.training.conftest import INTENT_FIXTURES, NAME, plan


def test_training_is_deterministic_to_the_byte(trained_dir: Path, tmp_path: Path) -> None:
    again = train(plan(tmp_path), say=lambda _line: None)
    assert again.written
    for suffix in (".npz", ".json"):
        assert (tmp_path / f"{NAME}{suffix}").read_bytes() == (
            trained_dir / f"{NAME}{suffix}"
        ).read_bytes()


def test_the_description_says_what_the_model_was_built_from(trained_dir: Path) -> None:
    meta = json.loads((trained_dir / f"{NAME}.json").read_text())
    assert meta["labels"] == ["advice", "pii", "off_channel", "reported"]
    assert len(meta["data_sha256"]) == 64
    assert meta["data_files"] == ["fixture.jsonl"]
    assert meta["metrics"]["test"]["messages"] == 4
    assert meta["counts"]["train"] + meta["counts"]["dev"] == meta["counts"]["team"]


def test_the_trained_model_learnt_the_fixture_intents(trained_dir: Path) -> None:
    model = IntentModel.load(trained_dir, NAME)
    advice = model.score("it is going to double, load up before it rips")
    moving = model.score("ping me on my other number")
    lunch = model.score("see you at lunch")
    assert advice.score(Category.ADVICE) > lunch.score(Category.ADVICE)
    assert moving.score(Category.OFF_CHANNEL) > moving.score(Category.ADVICE)


def test_a_worse_model_is_refused_and_the_shipped_one_kept(
    model_copy: Path, tmp_path: Path
) -> None:
    before = (model_copy / f"{NAME}.npz").read_bytes()
    wrong = tmp_path / "wrong-data"
    wrong.mkdir()
    rows = [json.loads(line) for line in (INTENT_FIXTURES / "data" / "fixture.jsonl").open()]
    with (wrong / "fixture.jsonl").open("w", encoding="utf-8") as out:
        for row in rows:  # every label swapped: advice <-> clean, off_channel -> advice
            row["labels"] = [] if row["labels"] else ["advice"]
            out.write(json.dumps(row) + "\n")
    outcome = train(plan(model_copy, data_dir=wrong), say=lambda _line: None)
    assert not outcome.written
    assert outcome.reason.startswith("refused: test macro F1")
    assert (model_copy / f"{NAME}.npz").read_bytes() == before


def test_the_command_prints_before_and_after_and_refuses_with_status_1(
    model_copy: Path, tmp_path: Path, intent_rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(INTENT_FIXTURES / "data", tmp_path / "data")
    (tmp_path / "data" / "fixture.jsonl").write_text(
        "\n".join(
            json.dumps({**json.loads(line), "labels": []})
            for line in (INTENT_FIXTURES / "data" / "fixture.jsonl").open()
        )
    )
    args = ["train", "--rules", str(intent_rules), "--name", NAME]
    args += ["--data", str(tmp_path / "data"), "--test", str(INTENT_FIXTURES / "test.jsonl")]
    args += ["--model-dir", str(model_copy), "--ordinary", str(tmp_path / "none.tsv")]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "== before (the model now shipped)" in out
    assert "== after (the candidate)" in out
    assert "untuned test set, rules + model" in out
    assert "refused" in out


def test_a_broken_data_line_is_one_line_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "bad.jsonl").write_text('{"text": "hi", "labels": []}\n{"text": \n')
    args = ["train", "--data", str(tmp_path / "data"), "--model-dir", str(tmp_path / "m")]
    args += ["--test", str(INTENT_FIXTURES / "test.jsonl"), "--ordinary", str(tmp_path / "x")]
    args += ["--rules", str(INTENT_FIXTURES.parent / "rules")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("train: ")
    assert "bad.jsonl:2: not a labelled record" in err
    assert "\n" not in err


def test_the_split_is_stable_and_keeps_duplicates_together() -> None:
    records = read_labelled(INTENT_FIXTURES / "data" / "fixture.jsonl")
    first = split(records)
    assert split(list(reversed(records)))[1] == list(reversed(first[1]))
    twice = [*records, *records]
    train_set, dev_set = split(twice)
    assert not {r.text for r in train_set} & {r.text for r in dev_set}


def test_unknown_labels_are_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"text": "hi", "labels": ["gossip"]}\n')
    with pytest.raises(DataError, match=r"x\.jsonl:1"):
        read_labelled(path)
