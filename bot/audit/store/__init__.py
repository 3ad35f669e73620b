"""The archive file: append-only SQLite with a keyed hash chain, signed checkpoints and purge.

``Archive`` (archive.py) owns the connection; each job has its module: the file and its
connections (db.py), checkpoints (checkpoints.py), reading (query.py), verification
(verify.py) and retention (purge.py).
"""

from __future__ import annotations

from bot.audit.store.archive import Archive
from bot.audit.store.checkpoints import CHECKPOINT_EVERY, CHECKPOINT_SECONDS, Checkpoint
from bot.audit.store.db import ArchiveError
from bot.audit.store.purge import RETENTION_YEARS, Purge, retention_cutoff
from bot.audit.store.query import Query
from bot.audit.store.verify import Break, Verification

__all__ = [
    "CHECKPOINT_EVERY",
    "CHECKPOINT_SECONDS",
    "RETENTION_YEARS",
    "Archive",
    "ArchiveError",
    "Break",
    "Checkpoint",
    "Purge",
    "Query",
    "Verification",
    "retention_cutoff",
]
