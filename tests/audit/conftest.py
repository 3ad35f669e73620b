"""Fixtures of the audit room: a fresh key ring, and an archive checkpointing every 10 records."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.audit import Archive, KeyRing
from bot.audit.keys import generate


@pytest.fixture
def ring() -> KeyRing:
    return generate()


@pytest.fixture
def archive(tmp_path: Path, ring: KeyRing) -> Archive:
    return Archive(tmp_path / "a.sqlite3", ring, checkpoint_every=10)
