"""The `screen` and `rules explain` commands, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import FIXTURE_RULES, REPO

ENGINE = ["--rules", str(FIXTURE_RULES), "--no-ner"]


def test_screen_jsonl_keeps_order_passes_fields_through_and_reports_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(
        b'{"id": "a", "text": "call 9123 4567", "group": "desk"}\n'
        b"not json\n"
        b"\xff\xfe broken utf-8\n"
        b'{"id": "b"}\n'
        b"\n"
        b'{"id": "c", "text": "\xe5\x8a\xa0\xe6\x88\x91vx"}\n'
        b'{"id": "d", "text": ""}\n'
    )
    assert main(["screen", "--jsonl", str(source), *ENGINE]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [line["id"] for line in lines] == ["a", "c", "d"]
    first = lines[0]
    assert first["group"] == "desk"
    assert first["categories"] == ["pii"]
    assert first["severity"] == "medium"
    assert first["actions"] == ["log", "warn", "redact"]
    assert first["redacted"] == "call 9123 ****"
    # The one JSON form of a finding (bot.domain.Finding.to_dict), as the archive keeps it.
    assert first["findings"][0] == {
        "rule_id": "hk-phone",
        "category": "pii",
        "severity": "medium",
        "start": 5,
        "end": 14,
        "score": 0.6,
        "why": "pattern hk-8; shape hk_phone ok",
        "title": "Hong Kong phone number",
        "redact": True,
    }
    assert lines[1]["categories"] == ["off_channel"]
    assert lines[2]["categories"] == []
    assert lines[2]["severity"] is None
    assert f"{source}:2: invalid JSON" in captured.err
    assert f"{source}:3: invalid UTF-8" in captured.err
    assert f'{source}:4: expected an object with a "text" string' in captured.err


def test_screen_text_never_prints_the_personal_data(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["screen", "client HKID A123456(3) thanks", *ENGINE]) == 0
    out = capsys.readouterr().out
    assert "A123456" not in out
    assert "A123***(*)" in out
    assert "FLAGGED" in out


def test_explain_shows_normalised_text_and_dropped_hits(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["rules", "explain", "hotline 2888 1234 加我ＶＸ", *ENGINE]) == 0
    out = capsys.readouterr().out
    assert "normalised: 'hotline 2888 1234 加我微信'" in out
    assert "+ move-to-wechat" in out
    assert "- hk-phone" in out
    assert "context -0.4 'hotline'" in out


def test_broken_rules_stop_screening_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "rules"
    (broken / "advice").mkdir(parents=True)
    (broken / "policy.yaml").write_text("min_score: 0.5\n")
    (broken / "advice" / "x.yaml").write_text("id: x\nseverity: extreme\n")
    assert main(["screen", "hello", "--rules", str(broken), "--no-ner"]) == 1
    err = capsys.readouterr().err
    assert f"{broken / 'advice' / 'x.yaml'}:2: unknown severity 'extreme'" in err


def test_python_dash_m_bot_entry_point_reads_stdin() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "screen", "--jsonl", "-", *ENGINE],
        input='{"id": 1, "text": "guaranteed return!"}\n',
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
        timeout=60,
    )
    assert json.loads(result.stdout)["categories"] == ["advice"]


def test_explain_shows_the_intent_model_and_what_weighed_most(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["rules", "explain", "load the boat on 0700 before results", "--no-ner"]) == 0
    out = capsys.readouterr().out
    assert "intent:     model intent-linear@" in out
    assert "  advice " in out
    assert "  reported " in out
    assert "weighed most:" in out


def test_screening_without_the_model_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "explain", "hello", "--no-ner", "--no-model"]) == 0
    out = capsys.readouterr().out
    assert "intent model off" in out
    assert "intent:     model" not in out
