"""The archive: an append-only, hash-chained, encrypted SQLite file with signed checkpoints."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.audit.keys import ArchiveKeyError, KeyRing

CHECKPOINT_EVERY = 1000  # records between signed checkpoints (and one on every close)
RETENTION_YEARS = 7  # SFC Keeping of Records Rules
GENESIS = "0" * 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    record_key TEXT NOT NULL UNIQUE,   -- idempotency: at-least-once writers never duplicate
    kind TEXT NOT NULL,                -- message | action | review
    message_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    sender_ref TEXT NOT NULL,          -- keyed hash of the sender id: lookup without disclosure
    categories TEXT NOT NULL,          -- comma-separated, for export filters
    at REAL NOT NULL,                  -- unix seconds
    key_id TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,          -- AES-GCM: text, sender, findings, details
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_message ON records(message_id);
CREATE INDEX IF NOT EXISTS records_sender ON records(sender_ref);
CREATE INDEX IF NOT EXISTS records_at ON records(at);
CREATE TABLE IF NOT EXISTS checkpoints (
    seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, at REAL NOT NULL, signature TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS anchor (   -- where the chain starts after a retention purge
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL, prev_hash TEXT NOT NULL, signature TEXT NOT NULL
);
"""


class ArchiveError(Exception):
    """The archive could not do what was asked (unwritable, full disk, wrong key, corrupt)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One record before sealing: what is public (filters) and what is encrypted (payload)."""

    record_key: str
    kind: str
    message_id: str
    conversation_id: str
    sender_id: str
    categories: tuple[str, ...]
    at: float
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Sealed:
    """An encrypted record, ready to chain (what replicas put on the Redis Stream)."""

    record_key: str
    kind: str
    message_id: str
    conversation_id: str
    sender_ref: str
    categories: str
    at: float
    key_id: str
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True, slots=True)
class Break:
    """The first place verification failed."""

    seq: int
    reason: str


def seal(entry: Entry, ring: KeyRing) -> Sealed:
    """Encrypt the payload under the current key, binding it to the public fields (AAD)."""
    sender_ref = sender_reference(entry.sender_id, ring)
    categories = ",".join(entry.categories)
    aad = _aad(
        entry.record_key,
        entry.kind,
        entry.message_id,
        entry.conversation_id,
        sender_ref,
        categories,
        entry.at,
    )
    nonce = os.urandom(12)
    plaintext = json.dumps(
        {"sender_id": entry.sender_id, **entry.payload}, ensure_ascii=False, default=str
    ).encode()
    ciphertext = AESGCM(ring.key(ring.current)).encrypt(nonce, plaintext, aad)
    return Sealed(
        record_key=entry.record_key,
        kind=entry.kind,
        message_id=entry.message_id,
        conversation_id=entry.conversation_id,
        sender_ref=sender_ref,
        categories=categories,
        at=entry.at,
        key_id=ring.current,
        nonce=nonce,
        ciphertext=ciphertext,
    )


def sender_reference(sender_id: str, ring: KeyRing) -> str:
    """Keyed hash of a sender id: finds one person's records without storing the id in clear."""
    return hmac.new(ring.signing, b"sender:" + sender_id.encode(), hashlib.sha256).hexdigest()[:32]


def _aad(*fields: object) -> bytes:
    return json.dumps(
        [repr(float(f)) if isinstance(f, int | float) else str(f) for f in fields]
    ).encode()


def record_hash(prev_hash: str, seq: int, sealed: Sealed) -> str:
    """SHA-256 over the previous hash and every stored field of the record."""
    digest = hashlib.sha256()
    public = (sealed.record_key, sealed.kind, sealed.message_id, sealed.conversation_id)
    for part in (
        prev_hash,
        str(seq),
        *public,
        sealed.sender_ref,
        sealed.categories,
        repr(sealed.at),
        sealed.key_id,
    ):
        digest.update(part.encode())
        digest.update(b"\x1f")
    digest.update(sealed.nonce)
    digest.update(sealed.ciphertext)
    return digest.hexdigest()


_COLUMNS = ", ".join(
    (
        "record_key",
        "kind",
        "message_id",
        "conversation_id",
        "sender_ref",
        "categories",
        "at",
        "key_id",
        "nonce",
        "ciphertext",
    )
)


# Read blobs as blobs even if someone rewrote them as text: a tampered type must be reported
# as a break, not crash the verifier.
_VERIFY_COLUMNS = _COLUMNS.replace("nonce", "CAST(nonce AS BLOB)").replace(
    "ciphertext", "CAST(ciphertext AS BLOB)"
)


def _public_fields(sealed: Sealed) -> tuple[Any, ...]:
    """A sealed record's fields in storage order (matches _COLUMNS)."""
    return (
        sealed.record_key,
        sealed.kind,
        sealed.message_id,
        sealed.conversation_id,
        sealed.sender_ref,
        sealed.categories,
        sealed.at,
        sealed.key_id,
        sealed.nonce,
        sealed.ciphertext,
    )


def _sign(ring: KeyRing, *fields: object) -> str:
    return hmac.new(ring.signing, "|".join(map(str, fields)).encode(), hashlib.sha256).hexdigest()


class Archive:
    """The SQLite archive. Thread-safe; one writer at a time (SQLite's own rule)."""

    def __init__(
        self, path: Path, ring: KeyRing, *, checkpoint_every: int = CHECKPOINT_EVERY
    ) -> None:
        """Open (or create) the archive at ``path``; raises ArchiveError if it cannot."""
        self.path = path
        self.ring = ring
        self.checkpoint_every = checkpoint_every
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            # WAL + synchronous=FULL: a committed record survives a crash or power loss.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise ArchiveError(f"cannot open archive {path}: {error}") from error
        self._since_checkpoint = 0

    def close(self) -> None:
        """Write a final checkpoint and close."""
        with self._lock:
            try:
                self._checkpoint()
            finally:
                self._db.close()

    # -- writing -------------------------------------------------------------------------
    def append(self, entries: list[Entry]) -> list[int]:
        """Seal and append; returns each entry's seq (existing seq for a duplicate record_key)."""
        return self.append_sealed([seal(e, self.ring) for e in entries])

    def append_sealed(self, batch: list[Sealed]) -> list[int]:
        """Chain already-sealed records in one transaction (group commit); idempotent."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                seq, prev = self._tail()
                seqs = []
                for sealed in batch:
                    existing = self._db.execute(
                        "SELECT seq FROM records WHERE record_key = ?", (sealed.record_key,)
                    ).fetchone()
                    if existing is not None:  # written before (at-least-once delivery)
                        seqs.append(int(existing[0]))
                        continue
                    digest = record_hash(prev, seq, sealed)
                    self._db.execute(
                        "INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (seq, *_public_fields(sealed), prev, digest),
                    )
                    seqs.append(seq)
                    seq, prev = seq + 1, digest
                self._since_checkpoint += len(batch)
                if self._since_checkpoint >= self.checkpoint_every:
                    self._checkpoint_in_transaction()
                self._db.execute("COMMIT")
            except sqlite3.Error as error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                # Full disk, read-only file...: the caller must not claim these were archived.
                raise ArchiveError(f"archive write failed ({self.path}): {error}") from error
            return seqs

    def _tail(self) -> tuple[int, str]:
        """The next seq and the hash it links to (after the last record, or the purge anchor)."""
        last = self._db.execute(
            "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if last is not None:
            return int(last[0]) + 1, str(last[1])
        anchor = self._db.execute("SELECT seq, prev_hash FROM anchor").fetchone()
        return (int(anchor[0]), str(anchor[1])) if anchor else (1, GENESIS)

    def _checkpoint(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._checkpoint_in_transaction()
            self._db.execute("COMMIT")
        except sqlite3.Error as error:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise ArchiveError(f"checkpoint failed: {error}") from error

    def _checkpoint_in_transaction(self) -> None:
        last = self._db.execute(
            "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if last is None:
            return
        now = time.time()
        signature = _sign(self.ring, last[0], last[1], repr(now))
        self._db.execute(
            "INSERT OR REPLACE INTO checkpoints VALUES (?,?,?,?)",
            (last[0], last[1], now, signature),
        )
        self._since_checkpoint = 0

    # -- reading -------------------------------------------------------------------------
    def rows(self, where: str = "", params: tuple[Any, ...] = ()) -> Iterator[sqlite3.Row]:
        """Raw rows in chain order (for verify and export)."""
        cursor = self._db.cursor()
        cursor.row_factory = sqlite3.Row
        yield from cursor.execute(f"SELECT * FROM records {where} ORDER BY seq", params)  # noqa: S608  (fixed SQL fragments)

    def decrypt(self, row: sqlite3.Row) -> dict[str, Any]:
        """The decrypted payload of a row; a wrong key is reported as such."""
        aad = _aad(
            row["record_key"],
            row["kind"],
            row["message_id"],
            row["conversation_id"],
            row["sender_ref"],
            row["categories"],
            row["at"],
        )
        try:
            plaintext = AESGCM(self.ring.key(row["key_id"])).decrypt(
                row["nonce"], row["ciphertext"], aad
            )
        except InvalidTag:
            raise ArchiveKeyError(
                f"record {row['seq']} cannot be decrypted with key id {row['key_id']!r}: "
                "the key is wrong, or the record was altered"
            ) from None
        payload: dict[str, Any] = json.loads(plaintext)
        return payload

    def count(self) -> int:
        """Records currently held."""
        return int(self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    # -- verification ----------------------------------------------------------------------
    def verify(self) -> tuple[int, Break | None]:
        """Walk the chain; return records checked and the first break (None when intact)."""
        anchor = self._db.execute("SELECT seq, prev_hash, signature FROM anchor").fetchone()
        expected_seq, prev = 1, GENESIS
        if anchor is not None:
            if not hmac.compare_digest(
                anchor[2], _sign(self.ring, "anchor", anchor[0], anchor[1])
            ):
                return 0, Break(
                    int(anchor[0]), "purge anchor signature is invalid (anchor altered)"
                )
            expected_seq, prev = int(anchor[0]), str(anchor[1])
        checkpoints = {
            int(seq): (digest, at, signature)
            for seq, digest, at, signature in self._db.execute(
                "SELECT seq, hash, at, signature FROM checkpoints"
            )
        }
        checked = 0
        cursor = self._db.execute(
            f"SELECT seq, {_VERIFY_COLUMNS}, prev_hash, hash FROM records ORDER BY seq"  # noqa: S608
        )
        for row in cursor:
            seq = int(row[0])
            if seq != expected_seq:
                return checked, Break(
                    expected_seq, f"record {expected_seq} is missing (next present is {seq})"
                )
            sealed = Sealed(
                row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10]
            )
            if row[11] != prev:
                return checked, Break(
                    seq, "link to the previous record is broken (removed or reordered records)"
                )
            digest = record_hash(prev, seq, sealed)
            if digest != row[12]:
                return checked, Break(seq, "record content does not match its hash (altered)")
            if seq in checkpoints:
                stored, at, signature = checkpoints[seq]
                if stored != digest or not hmac.compare_digest(
                    signature, _sign(self.ring, seq, stored, repr(at))
                ):
                    return checked, Break(
                        seq, "signed checkpoint does not match (chain rewritten)"
                    )
            prev, expected_seq = digest, seq + 1
            checked += 1
        last_signed = max(
            (s for s in checkpoints if s >= (int(anchor[0]) if anchor else 1)), default=0
        )
        if last_signed >= expected_seq:
            return checked, Break(
                expected_seq, f"archive truncated: a signed checkpoint covers record {last_signed}"
            )
        return checked, None

    # -- retention -----------------------------------------------------------------------
    def purge(self, older_than: float) -> int:
        """Remove records older than ``older_than`` (unix time) from the start of the chain only.

        The chain stays verifiable: a signed anchor records where it now starts and the hash
        that record links to. Records are removed only as a contiguous prefix, so a younger
        record before an older one (clock skew) keeps everything after it.
        """
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                first_kept = self._db.execute(
                    "SELECT seq, prev_hash FROM records WHERE at >= ? ORDER BY seq LIMIT 1",
                    (older_than,),
                ).fetchone()
                if first_kept is None:
                    last = self._db.execute(
                        "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1"
                    ).fetchone()
                    if last is None:
                        self._db.execute("ROLLBACK")
                        return 0
                    first_kept = (int(last[0]) + 1, str(last[1]))
                seq, prev = int(first_kept[0]), str(first_kept[1])
                removed = self._db.execute("DELETE FROM records WHERE seq < ?", (seq,)).rowcount
                self._db.execute("DELETE FROM checkpoints WHERE seq < ?", (seq,))
                signature = _sign(self.ring, "anchor", seq, prev)
                self._db.execute(
                    "INSERT OR REPLACE INTO anchor VALUES (1, ?, ?, ?)", (seq, prev, signature)
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise ArchiveError(f"purge failed: {error}") from error
            return int(removed)


def retention_cutoff(years: float = RETENTION_YEARS, now: float | None = None) -> float:
    """Unix time before which records have passed the retention period."""
    return (now if now is not None else time.time()) - years * 365.25 * 86400
