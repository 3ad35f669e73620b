"""`rules check`: exit status, and a failed example reported with its file and line."""

from pathlib import Path

import pytest

from bot.cli import main
from tests.engine.conftest import line_of


def test_rules_check_exit_status_and_failed_example(
    rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rules", "check", str(rules)]) == 0
    path = rules / "pii" / "hk-phone.yaml"
    path.write_text(
        path.read_text().replace("match: [call 9123 4567]", "match: [call 1234 4567]"),
        encoding="utf-8",
    )
    assert main(["rules", "check", str(rules)]) == 1
    out = capsys.readouterr().out
    line = line_of(path, "call 1234 4567")
    assert f"{path}:{line}: should match but did not: 'call 1234 4567'" in out
