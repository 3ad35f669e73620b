"""``python -m bot.simulator``: the base URL first, typed lines pushed as group messages."""

from __future__ import annotations

import io

import pytest

from bot.simulator.__main__ import main


def test_cli_prints_the_base_url_and_pushes_typed_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    typed = io.StringIO("hello desk\n/status\n/quit\n")
    assert main(["--port", "0", "--client-secret", "given-secret"], stdin=typed) == 0
    out, err = capsys.readouterr()
    first = out.splitlines()[0]
    assert first.startswith("http://127.0.0.1:")
    assert f"export DINGTALK_OPENAPI_ENDPOINT={first}" in out
    assert "given-secret" not in out + err
    assert "(queued: no client)" in err
    assert "waiting 1" in err
