"""Signed checkpoints: what each signs (and the purge anchor), signing the tail, the newest one."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.audit.keys import KeyRing
from bot.audit.records import sign

# A checkpoint says how many records existed, which is what makes a truncation visible: sign
# one after this many records or seconds of activity, whichever comes first, and on close.
CHECKPOINT_EVERY = 1000
CHECKPOINT_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement "record ``seq`` of archive ``archive_id`` had hash ``hash``".

    Shipped off the machine (``audit head``), it is a witness: a later truncation or rewrite of
    the archive file is detectable against it (``audit verify --witness``).
    """

    archive_id: str
    seq: int
    hash: str
    at: float
    signature: str

    def to_json(self) -> dict[str, Any]:
        """Plain data for a witness file (one JSON object per line)."""
        return {
            "archive_id": self.archive_id,
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at,
            "at_utc": datetime.fromtimestamp(self.at, UTC).isoformat(),
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        """The inverse of :meth:`to_json`."""
        return cls(
            str(data["archive_id"]),
            int(data["seq"]),
            str(data["hash"]),
            float(data["at"]),
            str(data["signature"]),
        )


def checkpoint_parts(archive_id: str, seq: int, digest: str, at: float) -> tuple[str, ...]:
    """What a checkpoint (or a witness) signs; the archive id keeps it to one archive."""
    return ("checkpoint", archive_id, str(seq), digest, repr(at))


def anchor_parts(archive_id: str, seq: int, prev_hash: str, at: float) -> tuple[str, ...]:
    """What the purge anchor signs: where the chain now starts and the hash it links to."""
    return ("anchor", archive_id, str(seq), prev_hash, repr(at))


def sign_tail(
    db: sqlite3.Connection, ring: KeyRing, archive_id: str, *, force: bool
) -> Checkpoint | None:
    """Sign the current tail (inside the caller's transaction); None when already covered."""
    last = db.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
    if last is None:
        return None
    seq, digest = int(last[0]), str(last[1])
    covered = db.execute("SELECT MAX(seq) FROM checkpoints").fetchone()[0]
    if not force and covered is not None and int(covered) >= seq:
        return None
    now = time.time()
    signature = sign(ring, *checkpoint_parts(archive_id, seq, digest, now))
    db.execute(
        "INSERT OR REPLACE INTO checkpoints VALUES (?,?,?,?)", (seq, digest, now, signature)
    )
    return Checkpoint(archive_id, seq, digest, now, signature)


def newest(db: sqlite3.Connection, archive_id: str) -> Checkpoint | None:
    """The newest checkpoint in the file, if any."""
    row = db.execute(
        "SELECT seq, hash, at, signature FROM checkpoints ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    return Checkpoint(archive_id, int(row[0]), str(row[1]), float(row[2]), str(row[3]))


def last_signed_at(db: sqlite3.Connection) -> float:
    """When the newest checkpoint was signed (0 if none): the clock for the next one."""
    last = db.execute("SELECT MAX(at) FROM checkpoints").fetchone()[0]
    return float(last) if last is not None else 0.0
