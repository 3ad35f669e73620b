"""Reading the archive: export filters (Query), streamed selection, counts, decryption, stats."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.audit.keys import KeyRing
from bot.audit.records import Stored, unseal
from bot.audit.store.db import RECORD_COLUMNS, snapshot, stored


@dataclass(frozen=True, slots=True)
class Query:
    """Export filters; all given filters must match."""

    since: float | None = None  # inclusive, unix seconds
    until: float | None = None  # exclusive
    group: str | None = None  # conversation id
    sender_ref: str | None = None  # records.sender_reference(sender_id, ring)
    category: str | None = None  # messages in this category and everything recorded about them
    message_id: str | None = None
    kinds: tuple[str, ...] = ()

    def where(self) -> tuple[str, tuple[Any, ...]]:
        """The SQL WHERE clause (fixed fragments, bound values) for these filters."""
        clauses: list[str] = []
        params: list[Any] = []
        for clause, value in (
            ("at >= ?", self.since),
            ("at < ?", self.until),
            ("conversation_id = ?", self.group),
            ("sender_ref = ?", self.sender_ref),
        ):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        if self.category is not None:
            # Actions and reviews carry no categories: include them through their message.
            clauses.append(
                "message_id IN (SELECT message_id FROM records WHERE kind = 'message' "
                "AND (',' || categories || ',') LIKE ?)"
            )
            params.append(f"%,{self.category},%")
        if self.message_id is not None:
            clauses.append("message_id = ?")
            params.append(self.message_id)
        if self.kinds:
            clauses.append(f"kind IN ({','.join('?' * len(self.kinds))})")
            params.extend(self.kinds)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", tuple(params)


def select(db: sqlite3.Connection, query: Query) -> Iterator[Stored]:
    """Stored records matching ``query``, in chain order (streamed: flat memory)."""
    where, params = query.where()
    cursor = db.execute(
        f"SELECT {RECORD_COLUMNS} FROM records {where} ORDER BY seq",  # noqa: S608  (fixed fragments)
        params,
    )
    cursor.arraysize = 512
    while rows := cursor.fetchmany():
        for row in rows:
            yield stored(row)


def count(db: sqlite3.Connection, query: Query) -> int:
    """Records matching ``query``."""
    where, params = query.where()
    sql = f"SELECT COUNT(*) FROM records {where}"  # noqa: S608  (fixed fragments)
    return int(db.execute(sql, params).fetchone()[0])


def decrypt(
    path: Path, ring: KeyRing, meta: MutableMapping[str, str], record: Stored
) -> dict[str, Any]:
    """The decrypted payload of a record; a wrong or missing key is reported as such.

    ``meta`` is the archive's note of each key id's fingerprint, which tells "a different
    key under the same id" apart from "the record was altered"; it is refreshed in place.
    """
    name = f"key:{record.sealed.key_id}"
    if name not in meta:  # perhaps first used by another process since we opened
        with snapshot(path) as db:
            row = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        if row is not None:
            meta[name] = str(row[0])
    return unseal(record.sealed, ring, seq=record.seq, expected_fingerprint=meta.get(name))


def _iso(moment: float | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment, UTC).isoformat()


def stats(db: sqlite3.Connection) -> dict[str, Any]:
    """Counts and positions of records, checkpoints and the purge anchor (no decryption)."""
    kinds = dict(db.execute("SELECT kind, COUNT(*) FROM records GROUP BY kind"))
    key_ids = dict(db.execute("SELECT key_id, COUNT(*) FROM records GROUP BY key_id"))
    first, last, oldest, newest = db.execute(
        "SELECT MIN(seq), MAX(seq), MIN(at), MAX(at) FROM records"
    ).fetchone()
    checkpoints, last_checkpoint, checkpoint_at = db.execute(
        "SELECT COUNT(*), MAX(seq), MAX(at) FROM checkpoints"
    ).fetchone()
    anchor = db.execute("SELECT seq, at FROM anchor").fetchone()
    return {
        "records": sum(kinds.values()),
        "by_kind": kinds,
        "by_key_id": key_ids,
        "first_seq": first,
        "last_seq": last,
        "oldest": _iso(oldest),
        "newest": _iso(newest),
        "checkpoints": checkpoints,
        "last_checkpoint_seq": last_checkpoint,
        "last_checkpoint_at": _iso(checkpoint_at),
        "purged_before_seq": anchor[0] if anchor else None,
        "last_purge_at": _iso(anchor[1]) if anchor else None,
    }
