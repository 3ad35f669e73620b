"""Verification: the chain walk reporting the first altered, removed, reordered or cut record."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.audit.keys import KeyRing
from bot.audit.records import GENESIS, ChainHasher, signature_ok
from bot.audit.store.checkpoints import Checkpoint, anchor_parts, checkpoint_parts
from bot.audit.store.db import VERIFY_COLUMNS

_NO_SEQ = float("inf")  # no more checkpoints: beyond every record


@dataclass(frozen=True, slots=True)
class Break:
    """The first place verification failed."""

    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class Verification:
    """What ``verify`` found: how much was checked, and the first break if any."""

    checked: int
    first_seq: int | None
    last_seq: int | None
    checkpoints: int  # signed checkpoints checked against the chain
    last_checkpoint: int | None  # seq of the newest one
    witnesses: int  # external checkpoints checked
    broken: Break | None

    @property
    def ok(self) -> bool:
        """True when the chain, checkpoints, anchor and witnesses all agree."""
        return self.broken is None

    @property
    def unwitnessed_tail(self) -> int:
        """Records after the newest checkpoint: a truncation of these alone is invisible."""
        if self.last_seq is None:
            return 0
        return self.last_seq - max(self.last_checkpoint or 0, (self.first_seq or 1) - 1)


class _SignedCheckpoints:
    """The checkpoints table read in seq order beside the records (a merge), not loaded.

    Seven years of five-minute checkpoints would be hundreds of thousands of rows.
    """

    def __init__(self, db: sqlite3.Connection, ring: KeyRing, archive_id: str) -> None:
        self._ring = ring
        self._archive_id = archive_id
        self._cursor = db.execute("SELECT seq, hash, at, signature FROM checkpoints ORDER BY seq")
        self._pending: Sequence[Any] | None = None
        self.next_seq: float = _NO_SEQ  # the seq of the next unchecked checkpoint
        self._advance()

    def _advance(self) -> None:
        self._pending = self._cursor.fetchone()
        self.next_seq = _NO_SEQ if self._pending is None else int(self._pending[0])

    def _skip_below(self, seq: int) -> None:
        while self.next_seq < seq:
            self._advance()  # below the chain's start: purged with their records

    def _signed(self) -> bool:
        assert self._pending is not None  # noqa: S101
        seq, digest, at, signature = self._pending
        try:
            parts = checkpoint_parts(self._archive_id, int(seq), str(digest), float(at))
        except (TypeError, ValueError):  # a tampered column type is a bad signature
            return False
        return signature_ok(self._ring, signature, *parts)

    def check(self, seq: int, digest: str) -> Break | None:
        """Record ``seq`` hashes to ``digest``: does a checkpoint on it agree?"""
        self._skip_below(seq)
        if self.next_seq != seq:
            return None
        assert self._pending is not None  # noqa: S101
        if self._pending[1] != digest or not self._signed():
            return Break(seq, "signed checkpoint does not match (chain rewritten)")
        self._advance()
        return None

    def beyond(self, expected_seq: int) -> Break | None:
        """After the last record: a signed checkpoint further on means a cut tail."""
        self._skip_below(expected_seq)
        if self._pending is None:
            return None
        if self._signed():
            return Break(
                expected_seq, f"truncated: a signed checkpoint covers record {self._pending[0]}"
            )
        return Break(int(self._pending[0]), "checkpoint signature is invalid (forged)")


class Verifier:
    """One walk over one snapshot: anchor, witnesses, each record in order, then the tail.

    Stops at the first break; which break is reported for each kind of tampering is fixed
    (docs/archive.md has the table, tests/audit/test_verify.py pins it).
    """

    def __init__(
        self,
        db: sqlite3.Connection,
        ring: KeyRing,
        archive_id: str,
        witnesses: Sequence[Checkpoint] = (),
    ) -> None:
        """Bind to a snapshot (a read transaction) of the archive ``archive_id``."""
        self._db = db
        self._ring = ring
        self._archive_id = archive_id
        self._hasher = ChainHasher(ring, archive_id)
        self._witnesses = witnesses
        self._witnessed: dict[int, str] = {}  # seq -> hash, for witnesses still in the chain
        self.checked = 0
        self.first_seq: int | None = None
        self.expected_seq, self.prev = 1, GENESIS  # the next record and what it must link to

    def run(self) -> Verification:
        """Walk the chain and stop at the first break."""
        count, last = self._db.execute("SELECT COUNT(*), MAX(seq) FROM checkpoints").fetchone()
        checkpoints = _SignedCheckpoints(self._db, self._ring, self._archive_id)
        broken = self._check_anchor() or self._check_witnesses()
        if broken is not None:
            return self._result(broken, None, count, last)
        cursor = self._db.execute(f"SELECT {VERIFY_COLUMNS} FROM records ORDER BY seq")  # noqa: S608
        cursor.arraysize = 1024
        while rows := cursor.fetchmany():
            for row in rows:
                broken = self._check_row(row, checkpoints)
                if broken is not None:
                    return self._result(broken, self.expected_seq - 1, count, last)
        last_seq = self.expected_seq - 1 if self.checked else None
        broken = checkpoints.beyond(self.expected_seq) or self._witness_beyond()
        return self._result(broken, last_seq, count, last)

    def _result(
        self, broken: Break | None, last_seq: int | None, checkpoints: int, last: int | None
    ) -> Verification:
        return Verification(
            self.checked,
            self.first_seq,
            last_seq,
            int(checkpoints),
            last,
            len(self._witnesses),
            broken,
        )

    def _check_anchor(self) -> Break | None:
        """After a purge the chain starts at the anchor: its signature says where, and on what."""
        anchor = self._db.execute("SELECT seq, prev_hash, at, signature FROM anchor").fetchone()
        if anchor is None:
            return None
        seq, link, at, signature = anchor
        try:
            parts = anchor_parts(self._archive_id, int(seq), str(link), float(at))
        except (TypeError, ValueError):
            parts = ("unreadable anchor",)
        if not signature_ok(self._ring, signature, *parts):
            return Break(int(seq), "purge anchor signature is invalid (altered)")
        self.expected_seq, self.prev = int(seq), str(link)
        return None

    def _check_witnesses(self) -> Break | None:
        """Each witness must be this archive's and signed; keep those the chain still holds."""
        for witness in self._witnesses:
            if witness.archive_id != self._archive_id:
                return Break(witness.seq, f"witness is for another archive ({witness.archive_id})")
            parts = checkpoint_parts(self._archive_id, witness.seq, witness.hash, witness.at)
            if not signature_ok(self._ring, witness.signature, *parts):
                return Break(witness.seq, "witness signature is invalid")
            if witness.seq >= self.expected_seq:  # older ones cover purged records
                self._witnessed[witness.seq] = witness.hash
        return None

    def _check_row(self, row: Sequence[Any], checkpoints: _SignedCheckpoints) -> Break | None:
        """One record: in place, linked, unaltered, and agreeing with checkpoints and witnesses."""
        seq = int(row[0])
        if seq != self.expected_seq:
            return self._gap(seq)
        if self.first_seq is None:
            self.first_seq = seq
        if row[11] != self.prev:
            return Break(seq, "link to the previous record is broken (removed or reordered)")
        digest = self._digest(seq, row)
        if digest != row[12]:
            return Break(seq, "record does not match its hash (altered)")
        if seq >= checkpoints.next_seq and (broken := checkpoints.check(seq, digest)):
            return broken
        if seq in self._witnessed and self._witnessed[seq] != digest:
            return Break(seq, "witness checkpoint does not match (chain rewritten)")
        self.prev, self.expected_seq = digest, seq + 1
        self.checked += 1
        return None

    def _gap(self, seq: int) -> Break:
        expected = self.expected_seq
        if seq > expected:
            reason = f"record {expected} is missing (removed; next present is {seq})"
            return Break(expected, reason)
        return Break(seq, f"record {seq} precedes the start of the chain ({expected})")

    def _digest(self, seq: int, row: Sequence[Any]) -> str:
        """The keyed hash the row should have; "" when a column was rewritten to NULL, say."""
        try:
            return self._hasher.row(
                seq,
                self.prev,
                *(str.encode(field) for field in row[1:7]),
                repr(float(row[7])).encode(),
                row[8].encode(),
                row[9],
                row[10],
            )
        except (TypeError, ValueError, AttributeError):
            return ""

    def _witness_beyond(self) -> Break | None:
        beyond = [seq for seq in self._witnessed if seq >= self.expected_seq]
        if beyond:
            return Break(self.expected_seq, f"truncated: a witness covers record {max(beyond)}")
        return None
