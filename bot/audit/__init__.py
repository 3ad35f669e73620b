"""The audit archive: every message and decision, tamper-evident, encrypted, kept, exportable.

The bot's entry points (docs/archive.md has the design):

- ``open_archive()`` -> :class:`Archive` (sync, SQLite) and ``AsyncArchive(archive)``, whose
  ``record`` returns only after the records are committed, and raises :class:`ArchiveError`
  when they were not;
- ``RedisArchiveSink`` (each replica) and ``Archiver`` (one consumer group) when several
  replicas share one archive through a Redis Stream;
- :class:`AuditTrail`, what the bot's pipeline writes to: ``SinkAuditTrail`` over either
  sink, ``MemoryAuditTrail`` (tests, demo), ``DiscardAuditTrail`` (``audit.sink = none``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from bot.audit.entries import REVIEW_DECISIONS, action_entry, message_entry, review_entry
from bot.audit.keys import ArchiveKeyError, KeyRing, load_from_environment
from bot.audit.records import Entry, Sealed, Stored
from bot.audit.store import (
    RETENTION_YEARS,
    Archive,
    ArchiveError,
    Break,
    Checkpoint,
    Purge,
    Query,
    Verification,
)
from bot.audit.stream import Archiver, RedisArchiveSink
from bot.audit.trail import (
    AuditTrail,
    DiscardAuditTrail,
    MemoryAuditTrail,
    RecordSink,
    SinkAuditTrail,
)
from bot.audit.writer import AsyncArchive

ENV_ARCHIVE = "BOT_ARCHIVE"
ENV_RETENTION_YEARS = "BOT_ARCHIVE_RETENTION_YEARS"


def default_archive_path(environ: Mapping[str, str] | None = None) -> Path:
    """BOT_ARCHIVE, else the user's data directory (XDG), never the working tree."""
    env = os.environ if environ is None else environ
    if configured := env.get(ENV_ARCHIVE):
        return Path(configured).expanduser()
    data_home = Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "dingtalk-compliance-bot" / "archive.sqlite3"


def retention_years(environ: Mapping[str, str] | None = None) -> float:
    """BOT_ARCHIVE_RETENTION_YEARS, else 7 (SFC Keeping of Records Rules)."""
    env = os.environ if environ is None else environ
    value = env.get(ENV_RETENTION_YEARS)
    if not value:
        return RETENTION_YEARS
    try:
        years = float(value)
    except ValueError:
        raise ArchiveError(
            f"{ENV_RETENTION_YEARS} must be a number of years, not {value!r}"
        ) from None
    if years <= 0:
        raise ArchiveError(f"{ENV_RETENTION_YEARS} must be positive")
    return years


def open_archive(
    path: Path | None = None, ring: KeyRing | None = None, *, read_only: bool = False
) -> Archive:
    """Open (or create) the archive: ``path`` or BOT_ARCHIVE; ``ring`` or the key sources.

    Blocking (file I/O, maybe a key command): async code calls it with ``asyncio.to_thread``.
    """
    return Archive(
        path or default_archive_path(), ring or load_from_environment(), read_only=read_only
    )


__all__ = [
    "ENV_ARCHIVE",
    "ENV_RETENTION_YEARS",
    "RETENTION_YEARS",
    "REVIEW_DECISIONS",
    "Archive",
    "ArchiveError",
    "ArchiveKeyError",
    "Archiver",
    "AsyncArchive",
    "AuditTrail",
    "Break",
    "Checkpoint",
    "DiscardAuditTrail",
    "Entry",
    "KeyRing",
    "MemoryAuditTrail",
    "Purge",
    "Query",
    "RecordSink",
    "RedisArchiveSink",
    "Sealed",
    "SinkAuditTrail",
    "Stored",
    "Verification",
    "action_entry",
    "default_archive_path",
    "load_from_environment",
    "message_entry",
    "open_archive",
    "retention_years",
    "review_entry",
]
