"""Exports: decrypted records in chain order, and a progress bar only when it is wanted."""

from __future__ import annotations

import io
import json

import pytest

from bot.audit import Archive, Query
from bot.audit.export import export, mentions
from tests.audit.helpers import entries


@pytest.mark.parametrize(
    ("show_progress", "bar"),
    [(True, True), (False, False), (None, False)],  # None: only on a terminal (not here)
)
def test_progress_goes_to_stderr_only_when_asked(
    archive: Archive, capsys: pytest.CaptureFixture[str], show_progress: bool | None, bar: bool
) -> None:
    archive.append(entries(3))
    out = io.StringIO()
    assert export(archive, Query(), out, show_progress=show_progress) == 3
    assert [json.loads(line)["seq"] for line in out.getvalue().splitlines()] == [1, 2, 3]
    captured = capsys.readouterr()
    assert captured.out == ""  # the data never mixes with the bar
    assert ("| 3/3 [" in captured.err) is bar
    assert ("rec/s" in captured.err) is bar


def test_an_empty_export_shows_no_bar_even_when_asked(
    archive: Archive, capsys: pytest.CaptureFixture[str]
) -> None:
    assert export(archive, Query(), io.StringIO(), show_progress=True) == 0
    assert capsys.readouterr().err == ""


def test_progress_counts_every_record_decrypted_not_only_those_kept(
    archive: Archive, capsys: pytest.CaptureFixture[str]
) -> None:
    archive.append(entries(3))
    archive.append(entries(1, start=3, text="call Alice on 9123 4567"))
    out = io.StringIO()
    assert export(archive, Query(), out, show_progress=True, keep=mentions(["9123"])) == 1
    assert "| 4/4 [" in capsys.readouterr().err
