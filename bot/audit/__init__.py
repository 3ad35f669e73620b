"""The audit archive: every message and decision, tamper-evident, encrypted, kept, exportable."""

from __future__ import annotations

import os
from pathlib import Path

from bot.audit.keys import ArchiveKeyError, KeyRing, load_from_environment
from bot.audit.store import Archive, ArchiveError, Break
from bot.audit.writer import Archiver, AsyncArchive, RedisArchiveSink


def default_archive_path() -> Path:
    """BOT_ARCHIVE, else the user's data directory (XDG), never the working tree."""
    if configured := os.environ.get("BOT_ARCHIVE"):
        return Path(configured)
    data_home = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return data_home / "dingtalk-compliance-bot" / "archive.sqlite3"


def open_archive(path: Path | None = None, ring: KeyRing | None = None) -> Archive:
    """Open the archive with the firm's key from the environment (see keys.py)."""
    return Archive(path or default_archive_path(), ring or load_from_environment())


__all__ = [
    "Archive",
    "ArchiveError",
    "ArchiveKeyError",
    "Archiver",
    "AsyncArchive",
    "Break",
    "KeyRing",
    "RedisArchiveSink",
    "default_archive_path",
    "open_archive",
]
