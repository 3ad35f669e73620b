"""Retention: the cutoff, which records have expired, removing them behind a signed anchor.

The SFC's Keeping of Records Rules (Cap. 571O) keep records 7 years, and its FAQ (Q3) says
erasure within that period is prohibited, so the PDPO's s.26 duty to erase applies only once
it has ended. A purge therefore removes only expired records, and is itself recorded.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.audit.entries import operator_name
from bot.audit.keys import KeyRing
from bot.audit.records import Entry, sign
from bot.audit.store.checkpoints import anchor_parts

RETENTION_YEARS = 7.0  # SFC Keeping of Records Rules (Cap. 571O); compliance records: 7 years


@dataclass(frozen=True, slots=True)
class Purge:
    """The outcome of a retention purge."""

    removed: int
    first_kept: int  # the chain now starts here (the purge anchor)
    cutoff: float
    record_seq: int | None  # the "purge" record appended to the chain; None on a dry run


@dataclass(frozen=True, slots=True)
class PurgePlan:
    """Which prefix of the chain has expired: records ``start`` up to ``first_kept - 1``."""

    cutoff: float
    start: int | None  # the chain's first seq; None when the archive is empty
    first_kept: int

    @property
    def removed(self) -> int:
        """How many records the purge removes (0 when nothing has expired)."""
        return 0 if self.start is None else max(self.first_kept - self.start, 0)

    def outcome(self, record_seq: int | None = None) -> Purge:
        """The :class:`Purge` this plan amounts to (``record_seq``: the purge's own record)."""
        if self.start is None:
            return Purge(0, 0, self.cutoff, None)
        return Purge(self.removed, self.first_kept, self.cutoff, record_seq)


def retention_cutoff(years: float = RETENTION_YEARS, now: float | None = None) -> float:
    """Unix time before which records have passed the retention period (365.25-day years)."""
    return (now if now is not None else time.time()) - years * 365.25 * 86400


def plan(db: sqlite3.Connection, cutoff: float) -> PurgePlan:
    """The expired prefix: everything before the first record at or after ``cutoff``.

    Only a contiguous prefix goes, so a record younger than the cutoff keeps everything after
    it (a clock stepped back must not punch holes in the chain).
    """
    start = db.execute("SELECT MIN(seq) FROM records").fetchone()[0]
    young = db.execute(
        "SELECT MIN(seq) FROM records WHERE at >= ? OR at IS NULL", (cutoff,)
    ).fetchone()[0]
    if start is None:
        return PurgePlan(cutoff, None, 0)
    tail = int(db.execute("SELECT MAX(seq) FROM records").fetchone()[0])
    first_kept = int(young) if young is not None else tail + 1
    return PurgePlan(cutoff, int(start), first_kept)


def remove(
    db: sqlite3.Connection,
    expired: PurgePlan,
    ring: KeyRing,
    archive_id: str,
    *,
    operator: str,
    reason: str,
) -> Entry:
    """Delete the expired prefix and its checkpoints and sign the anchor the rest starts from.

    Runs inside the caller's transaction; returns the ``purge`` record to append in it.
    """
    first_kept = expired.first_kept
    link, oldest, newest = db.execute(
        "SELECT (SELECT hash FROM records WHERE seq = ?), MIN(at), MAX(at) "
        "FROM records WHERE seq < ?",
        (first_kept - 1, first_kept),
    ).fetchone()
    db.execute("DELETE FROM records WHERE seq < ?", (first_kept,))
    db.execute("DELETE FROM checkpoints WHERE seq < ?", (first_kept,))
    now = time.time()
    signature = sign(ring, *anchor_parts(archive_id, first_kept, str(link), now))
    db.execute(
        "INSERT OR REPLACE INTO anchor VALUES (1, ?, ?, ?, ?)",
        (first_kept, str(link), now, signature),
    )
    return Entry(
        record_key=f"purge:{first_kept}:{uuid.uuid4().hex}",
        kind="purge",
        message_id="",
        conversation_id="",
        sender_id="",
        categories=(),
        at=now,
        payload={
            "operator": operator or operator_name(),
            "reason": reason,
            "removed": expired.removed,
            "first_removed_seq": expired.start,
            "last_removed_seq": first_kept - 1,
            "oldest_removed": datetime.fromtimestamp(oldest, UTC).isoformat(),
            "newest_removed": datetime.fromtimestamp(newest, UTC).isoformat(),
            "cutoff": datetime.fromtimestamp(expired.cutoff, UTC).isoformat(),
        },
    )
