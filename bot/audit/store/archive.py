"""The archive file: append-only SQLite with a keyed hash chain, signed checkpoints and purge."""

from __future__ import annotations

import contextlib
import getpass
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from bot.audit.keys import ArchiveKeyError, KeyRing
from bot.audit.records import (
    FORMAT,
    GENESIS,
    ChainHasher,
    Entry,
    Sealed,
    Stored,
    seal,
    sign,
    signature_ok,
    unseal,
)

CHECKPOINT_EVERY = 1000  # records between signed checkpoints ...
CHECKPOINT_SECONDS = 300.0  # ... or seconds, whichever comes first; and one on every close
RETENTION_YEARS = 7.0  # SFC Keeping of Records Rules (Cap. 571O); compliance records: 7 years
BUSY_TIMEOUT_SECONDS = 10.0  # another process (the CLI, a second archiver) holding the lock

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    record_key TEXT NOT NULL UNIQUE,   -- idempotency: at-least-once writers never duplicate
    kind TEXT NOT NULL,                -- message | action | review | access | purge
    message_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    sender_ref TEXT NOT NULL,          -- keyed hash of the sender id: lookup without disclosure
    categories TEXT NOT NULL,          -- comma-separated, for export filters
    at REAL NOT NULL,                  -- unix seconds
    key_id TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,          -- AES-256-GCM: text, sender, names, findings, details
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL                 -- HMAC-SHA256 over all of the above (records.ChainHasher)
);
CREATE INDEX IF NOT EXISTS records_message ON records(message_id);
CREATE INDEX IF NOT EXISTS records_sender ON records(sender_ref);
CREATE INDEX IF NOT EXISTS records_group ON records(conversation_id);
CREATE INDEX IF NOT EXISTS records_at ON records(at);
CREATE TABLE IF NOT EXISTS checkpoints (
    seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, at REAL NOT NULL, signature TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS anchor (   -- where the chain starts after a retention purge
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL, prev_hash TEXT NOT NULL, at REAL NOT NULL, signature TEXT NOT NULL
);
"""

_T = TypeVar("_T")

_RECORD_COLUMNS = (
    "seq, record_key, kind, message_id, conversation_id, sender_ref, categories, at, key_id, "
    "nonce, ciphertext, prev_hash, hash"
)
# Read blobs as blobs even if someone rewrote them as text: a tampered type must be reported
# as a break, not crash the verifier.
_VERIFY_COLUMNS = _RECORD_COLUMNS.replace("nonce", "CAST(nonce AS BLOB)").replace(
    "ciphertext", "CAST(ciphertext AS BLOB)"
)


class ArchiveError(Exception):
    """The archive could not do what was asked (unwritable, full disk, corrupt, closed)."""


@dataclass(frozen=True, slots=True)
class Break:
    """The first place verification failed."""

    seq: int
    reason: str


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


def _checkpoint_parts(archive_id: str, seq: int, digest: str, at: float) -> tuple[str, ...]:
    return ("checkpoint", archive_id, str(seq), digest, repr(at))


def _anchor_parts(archive_id: str, seq: int, prev_hash: str, at: float) -> tuple[str, ...]:
    return ("anchor", archive_id, str(seq), prev_hash, repr(at))


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


@dataclass(frozen=True, slots=True)
class Purge:
    """The outcome of a retention purge."""

    removed: int
    first_kept: int  # the chain now starts here (the purge anchor)
    cutoff: float
    record_seq: int | None  # the "purge" record appended to the chain; None on a dry run


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
        if self.since is not None:
            clauses.append("at >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("at < ?")
            params.append(self.until)
        if self.group is not None:
            clauses.append("conversation_id = ?")
            params.append(self.group)
        if self.sender_ref is not None:
            clauses.append("sender_ref = ?")
            params.append(self.sender_ref)
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


def operator_name() -> str:
    """Who is running this (recorded with purges, exports and reviews); never raises."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry and no $USER
        return f"uid:{os.getuid()}"


def retention_cutoff(years: float = RETENTION_YEARS, now: float | None = None) -> float:
    """Unix time before which records have passed the retention period (365.25-day years)."""
    return (now if now is not None else time.time()) - years * 365.25 * 86400


def _connect_read_only(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise ArchiveError(f"no archive at {path}")
    uri = path.resolve().as_uri()
    try:
        db = sqlite3.connect(
            f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False
        )
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.OperationalError:
        # A WAL-mode copy on write-once storage: no -shm file can be made beside it, and
        # nothing else writes to it, so it may be opened as immutable.
        db = sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False)
    db.isolation_level = None
    return db


class Archive:
    """The SQLite archive. Writes are serialised by a lock (and SQLite's own file lock).

    Reads (verify, select) use their own read-only connection, a consistent snapshot that
    never blocks the writer (WAL).
    """

    def __init__(
        self,
        path: Path,
        ring: KeyRing,
        *,
        checkpoint_every: int = CHECKPOINT_EVERY,
        checkpoint_seconds: float = CHECKPOINT_SECONDS,
        read_only: bool = False,
    ) -> None:
        """Open (or create) the archive at ``path``.

        Raises:
            ArchiveError: it cannot be opened or created, or is not an archive of this format.
            ArchiveKeyError: ``ring`` is not the key ring this archive was written with.
        """
        self.path = Path(path)
        self.ring = ring
        self.read_only = read_only
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self._lock = threading.RLock()  # close() checkpoints while holding it
        self._closed = False
        self._db = self._connect()
        try:
            self.meta = self._load_meta()
            self.archive_id = self.meta["archive_id"]
            self._check_keys()
        except sqlite3.Error as error:
            self._db.close()
            raise ArchiveError(f"cannot open archive {self.path}: {error}") from error
        except BaseException:
            self._db.close()
            raise
        self._hasher = ChainHasher(ring, self.archive_id)
        self._since_checkpoint = 0
        last = self._db.execute("SELECT MAX(at) FROM checkpoints").fetchone()[0]
        self._last_checkpoint_at = float(last) if last is not None else 0.0

    def _connect(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = None
        try:
            if self.read_only:
                return _connect_read_only(self.path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_SECONDS,
                check_same_thread=False,
                isolation_level=None,
            )
            # WAL: readers never block the writer. synchronous=FULL: a transaction is on disk
            # when COMMIT returns, so "archived" means it survives a crash or power loss.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            # Up to 32 MiB of page cache (SQLite's default is 2 MB): past a few hundred
            # thousand records the indexes (sender, group, message, record key) outgrow the
            # default. Measured over 1M appends: about +15% and steadier, for +32 MB RSS.
            db.execute("PRAGMA cache_size=-32768")
            db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as error:
            if db is not None:
                db.close()
            raise ArchiveError(f"cannot open archive {self.path}: {error}") from error
        return db

    def _check_keys(self) -> None:
        """Refuse a key ring that is not this archive's (before anything is written with it)."""
        ring = self.ring
        if self.meta["signing"] != ring.signing_fingerprint:
            raise ArchiveKeyError(
                f"the signing key does not match this archive's (archive {self.path} expects "
                f"fingerprint {self.meta['signing']}, the key ring has "
                f"{ring.signing_fingerprint}): wrong key file"
            )
        expected = self.meta.get(f"key:{ring.current}")
        if not self.read_only and expected not in (None, ring.fingerprint(ring.current)):
            raise ArchiveKeyError(
                f"the current key id {ring.current!r} names a different key in this archive "
                f"(fingerprint {expected}, the key ring has {ring.fingerprint(ring.current)}); "
                "records written now would be unreadable with the archive's key: wrong key file"
            )

    def _load_meta(self) -> dict[str, str]:
        meta = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
        if "format" not in meta:
            has_records = self._db.execute("SELECT 1 FROM records LIMIT 1").fetchone()
            if has_records or self.read_only:
                raise ArchiveError(
                    f"{self.path} has no archive format marker: not an archive, or one written "
                    "by a pre-release version (verify it with that version)"
                )
            self._db.execute("BEGIN IMMEDIATE")
            meta = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
            if "format" not in meta:  # another process may have just created it
                meta = {
                    "format": str(FORMAT),
                    "archive_id": uuid.uuid4().hex,
                    "created_at": repr(time.time()),
                    "signing": self.ring.signing_fingerprint,
                }
                self._db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            self._db.execute("COMMIT")
        if meta["format"] != str(FORMAT):
            raise ArchiveError(
                f"{self.path} is archive format {meta['format']}; this version reads {FORMAT}"
            )
        return meta

    # -- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:
        """Write a final checkpoint (so the tail is covered) and close. Idempotent."""
        with self._lock:
            if self._closed:
                return
            try:
                if not self.read_only:
                    self._in_transaction(lambda: self._checkpoint(force=False))
            finally:
                self._closed = True
                self._db.close()

    def __enter__(self) -> Archive:
        """Use as a context manager: closed (and checkpointed) on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close."""
        self.close()

    # -- writing -------------------------------------------------------------------------
    def append(self, entries: Sequence[Entry]) -> list[int]:
        """Seal under the current key and append; returns each entry's seq (see append_sealed)."""
        return self.append_sealed([seal(entry, self.ring) for entry in entries])

    def append_sealed(self, batch: Sequence[Sealed]) -> list[int]:
        """Chain already-sealed records in one transaction (group commit); idempotent.

        Returns each record's seq; a record whose ``record_key`` is already archived is not
        written again and its existing seq is returned. Returns only after COMMIT.

        Raises:
            ArchiveError: nothing in the batch was written (full disk, read-only file...).
        """
        if not batch:
            return []
        return self._in_transaction(lambda: self._append_locked(batch))

    def _in_transaction(self, work: Callable[[], _T]) -> _T:
        """Run ``work`` in one write transaction, under the lock; any error rolls it back."""
        if self.read_only:
            raise ArchiveError(f"archive {self.path} is open read-only")
        with self._lock:
            if self._closed:
                raise ArchiveError(f"archive {self.path} is closed")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    result = work()
                    self._db.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        if self._db.in_transaction:
                            self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as error:
                # Full disk, read-only file, I/O error: the caller must not claim these were
                # archived, so the error always reaches it.
                raise ArchiveError(f"archive write failed ({self.path}): {error}") from error
            return result

    def _append_locked(self, batch: Sequence[Sealed]) -> list[int]:
        self._note_keys(batch)
        seq, prev = self._tail()
        seqs: list[int] = []
        added = 0
        for sealed in batch:
            digest = self._hasher(seq, prev, sealed)
            inserted = self._db.execute(
                "INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(record_key) DO NOTHING",
                (
                    seq,
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
                    prev,
                    digest,
                ),
            ).rowcount
            if not inserted:  # written before: at-least-once delivery, or a replay
                (existing,) = self._db.execute(
                    "SELECT seq FROM records WHERE record_key = ?", (sealed.record_key,)
                ).fetchone()
                seqs.append(int(existing))
                continue
            seqs.append(seq)
            seq, prev, added = seq + 1, digest, added + 1
        self._since_checkpoint += added
        if added and (
            self._since_checkpoint >= self.checkpoint_every
            or time.time() - self._last_checkpoint_at >= self.checkpoint_seconds
        ):
            self._checkpoint(force=True)
        return seqs

    def _note_keys(self, batch: Sequence[Sealed]) -> None:
        """Record which key each key id means (its fingerprint) the first time it is used."""
        for key_id in {sealed.key_id for sealed in batch}:
            name = f"key:{key_id}"
            if name in self.meta or key_id not in self.ring.keys:
                continue
            stored = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
            if stored is None:
                value = self.ring.fingerprint(key_id)
                self._db.execute("INSERT INTO meta VALUES (?, ?)", (name, value))
            else:
                value = str(stored[0])
            self.meta[name] = value

    def _tail(self) -> tuple[int, str]:
        """The next seq and the hash it links to (after the last record, or the purge anchor)."""
        last = self._db.execute(
            "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if last is not None:
            return int(last[0]) + 1, str(last[1])
        anchor = self._db.execute("SELECT seq, prev_hash FROM anchor").fetchone()
        return (int(anchor[0]), str(anchor[1])) if anchor else (1, GENESIS)

    def _checkpoint(self, *, force: bool) -> Checkpoint | None:
        """Sign the current tail (inside a transaction); skipped when already covered."""
        last = self._db.execute(
            "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if last is None:
            return None
        seq, digest = int(last[0]), str(last[1])
        covered = self._db.execute("SELECT MAX(seq) FROM checkpoints").fetchone()[0]
        if not force and covered is not None and int(covered) >= seq:
            return None
        now = time.time()
        signature = sign(self.ring, *_checkpoint_parts(self.archive_id, seq, digest, now))
        self._db.execute(
            "INSERT OR REPLACE INTO checkpoints VALUES (?,?,?,?)", (seq, digest, now, signature)
        )
        self._since_checkpoint = 0
        self._last_checkpoint_at = now
        return Checkpoint(self.archive_id, seq, digest, now, signature)

    def head(self) -> Checkpoint | None:
        """The newest signed checkpoint, made at the current tail first when possible.

        Ship its JSON off the machine (a witness) so a later truncation is detectable.
        """
        if not self.read_only:
            self._in_transaction(lambda: self._checkpoint(force=False))
        row = self._db.execute(
            "SELECT seq, hash, at, signature FROM checkpoints ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return Checkpoint(self.archive_id, int(row[0]), str(row[1]), float(row[2]), str(row[3]))

    # -- reading -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        """A separate read-only connection holding one snapshot for the whole read."""
        db = _connect_read_only(self.path)
        try:
            db.execute("BEGIN")
            yield db
        finally:
            db.close()

    def select(self, query: Query | None = None) -> Iterator[Stored]:
        """Stored records matching ``query``, in chain order (streamed: flat memory)."""
        where, params = (query or Query()).where()
        with self._reader() as db:
            cursor = db.execute(
                f"SELECT {_RECORD_COLUMNS} FROM records {where} ORDER BY seq",  # noqa: S608  (fixed fragments)
                params,
            )
            cursor.arraysize = 512
            while rows := cursor.fetchmany():
                for row in rows:
                    yield _stored(row)

    def count(self, query: Query | None = None) -> int:
        """Records matching ``query``."""
        where, params = (query or Query()).where()
        with self._reader() as db:
            sql = f"SELECT COUNT(*) FROM records {where}"  # noqa: S608  (fixed fragments)
            return int(db.execute(sql, params).fetchone()[0])

    def message_record(self, message_id: str) -> Stored | None:
        """The ``message`` record of ``message_id``, if archived."""
        query = Query(message_id=message_id, kinds=("message",))
        return next(iter(self.select(query)), None)

    def decrypt(self, stored: Stored) -> dict[str, Any]:
        """The decrypted payload of a record; a wrong or missing key is reported as such."""
        name = f"key:{stored.sealed.key_id}"
        if name not in self.meta:  # perhaps first used by another process since we opened
            with self._reader() as db:
                row = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
            if row is not None:
                self.meta[name] = str(row[0])
        return unseal(
            stored.sealed, self.ring, seq=stored.seq, expected_fingerprint=self.meta.get(name)
        )

    def stats(self) -> dict[str, Any]:
        """Counts and positions (no decryption): for operators and monitoring."""
        with self._reader() as db:
            kinds = dict(db.execute("SELECT kind, COUNT(*) FROM records GROUP BY kind"))
            key_ids = dict(db.execute("SELECT key_id, COUNT(*) FROM records GROUP BY key_id"))
            first, last, oldest, newest = db.execute(
                "SELECT MIN(seq), MAX(seq), MIN(at), MAX(at) FROM records"
            ).fetchone()
            checkpoints, last_checkpoint, checkpoint_at = db.execute(
                "SELECT COUNT(*), MAX(seq), MAX(at) FROM checkpoints"
            ).fetchone()
            anchor = db.execute("SELECT seq, at FROM anchor").fetchone()

        def iso(moment: float | None) -> str | None:
            return None if moment is None else datetime.fromtimestamp(moment, UTC).isoformat()

        return {
            "path": str(self.path),
            "archive_id": self.archive_id,
            "format": int(self.meta["format"]),
            "records": sum(kinds.values()),
            "by_kind": kinds,
            "by_key_id": key_ids,
            "first_seq": first,
            "last_seq": last,
            "oldest": iso(oldest),
            "newest": iso(newest),
            "checkpoints": checkpoints,
            "last_checkpoint_seq": last_checkpoint,
            "last_checkpoint_at": iso(checkpoint_at),
            "purged_before_seq": anchor[0] if anchor else None,
            "last_purge_at": iso(anchor[1]) if anchor else None,
            "bytes": sum(
                p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists()
            ),
        }

    # -- verification ----------------------------------------------------------------------
    def verify(self, witnesses: Sequence[Checkpoint] = ()) -> Verification:
        """Walk the chain and stop at the first break.

        Detects an altered record (its keyed hash), a removed one (a gap in seq), reordered
        ones (a broken link), a rewritten chain (needs the key), a forged anchor or checkpoint
        (signatures), and a truncated tail up to the newest checkpoint or witness.
        """
        with self._reader() as db:
            return self._verify(db, witnesses)

    def _verify(self, db: sqlite3.Connection, witnesses: Sequence[Checkpoint]) -> Verification:
        archive_id = self.archive_id
        checked = 0
        first_seq: int | None = None
        checkpoint_count, last_checkpoint = db.execute(
            "SELECT COUNT(*), MAX(seq) FROM checkpoints"
        ).fetchone()
        # Checkpoints are streamed in seq order beside the records (a merge), not loaded:
        # seven years of five-minute checkpoints would be hundreds of thousands of rows.
        checkpoints = db.execute("SELECT seq, hash, at, signature FROM checkpoints ORDER BY seq")
        pending = checkpoints.fetchone()

        def result(broken: Break | None, last_seq: int | None) -> Verification:
            return Verification(
                checked,
                first_seq,
                last_seq,
                int(checkpoint_count),
                last_checkpoint,
                len(witnesses),
                broken,
            )

        def signed(checkpoint: Sequence[Any]) -> bool:
            seq, digest, at, signature = checkpoint
            try:
                parts = _checkpoint_parts(archive_id, int(seq), str(digest), float(at))
            except (TypeError, ValueError):  # a tampered column type is a bad signature
                return False
            return signature_ok(self.ring, signature, *parts)

        expected_seq, prev = 1, GENESIS
        anchor = db.execute("SELECT seq, prev_hash, at, signature FROM anchor").fetchone()
        if anchor is not None:
            seq, link, at, signature = anchor
            try:
                parts = _anchor_parts(archive_id, int(seq), str(link), float(at))
            except (TypeError, ValueError):
                parts = ("unreadable anchor",)
            if not signature_ok(self.ring, signature, *parts):
                return result(Break(int(seq), "purge anchor signature is invalid (altered)"), None)
            expected_seq, prev = int(seq), str(link)
        witnessed: dict[int, str] = {}
        for witness in witnesses:
            if witness.archive_id != archive_id:
                return result(
                    Break(witness.seq, f"witness is for another archive ({witness.archive_id})"),
                    None,
                )
            parts = _checkpoint_parts(archive_id, witness.seq, witness.hash, witness.at)
            if not signature_ok(self.ring, witness.signature, *parts):
                return result(Break(witness.seq, "witness signature is invalid"), None)
            if witness.seq >= expected_seq:  # older ones cover purged records
                witnessed[witness.seq] = witness.hash

        hasher = self._hasher
        cursor = db.execute(f"SELECT {_VERIFY_COLUMNS} FROM records ORDER BY seq")  # noqa: S608
        cursor.arraysize = 1024
        while rows := cursor.fetchmany():
            for row in rows:
                seq = int(row[0])
                if seq != expected_seq:
                    reason = (
                        f"record {expected_seq} is missing (removed; next present is {seq})"
                        if seq > expected_seq
                        else f"record {seq} precedes the start of the chain ({expected_seq})"
                    )
                    return result(Break(min(seq, expected_seq), reason), expected_seq - 1)
                if first_seq is None:
                    first_seq = seq
                if row[11] != prev:
                    return result(
                        Break(seq, "link to the previous record is broken (removed or reordered)"),
                        seq - 1,
                    )
                try:
                    digest = hasher.row(
                        seq,
                        prev,
                        *(str.encode(field) for field in row[1:7]),
                        repr(float(row[7])).encode(),
                        row[8].encode(),
                        row[9],
                        row[10],
                    )
                except (TypeError, ValueError, AttributeError):  # a column rewritten to NULL, say
                    digest = ""
                if digest != row[12]:
                    return result(Break(seq, "record does not match its hash (altered)"), seq - 1)
                while pending is not None and int(pending[0]) < seq:
                    pending = checkpoints.fetchone()  # below the chain's start: purged
                if pending is not None and int(pending[0]) == seq:
                    if pending[1] != digest or not signed(pending):
                        return result(
                            Break(seq, "signed checkpoint does not match (chain rewritten)"),
                            seq - 1,
                        )
                    pending = checkpoints.fetchone()
                if seq in witnessed and witnessed[seq] != digest:
                    return result(
                        Break(seq, "witness checkpoint does not match (chain rewritten)"), seq - 1
                    )
                prev, expected_seq = digest, seq + 1
                checked += 1
        last_seq = expected_seq - 1 if checked else None
        while pending is not None and int(pending[0]) < expected_seq:
            pending = checkpoints.fetchone()
        if pending is not None:  # a checkpoint beyond the last record
            if signed(pending):
                return result(
                    Break(
                        expected_seq, f"truncated: a signed checkpoint covers record {pending[0]}"
                    ),
                    last_seq,
                )
            return result(
                Break(int(pending[0]), "checkpoint signature is invalid (forged)"), last_seq
            )
        beyond = [s for s in witnessed if s >= expected_seq]
        if beyond:
            return result(
                Break(expected_seq, f"truncated: a witness covers record {max(beyond)}"),
                last_seq,
            )
        return result(None, last_seq)

    # -- retention -----------------------------------------------------------------------
    def purge(
        self, cutoff: float, *, operator: str = "", reason: str = "", dry_run: bool = False
    ) -> Purge:
        """Remove records older than ``cutoff`` (unix time) from the start of the chain only.

        Only a contiguous prefix is removed, so a record younger than the cutoff keeps
        everything after it (a clock stepped back). A signed anchor records where the chain now
        starts and the hash its first record links to, so the rest still verifies; a ``purge``
        record is appended saying what went, when and by whom.

        Raises:
            ArchiveError: the archive does not verify. Purging then could erase the evidence of
                tampering, so nothing is removed.
        """
        checked = self.verify()
        if checked.broken is not None:
            raise ArchiveError(
                f"refusing to purge: the archive does not verify (record {checked.broken.seq}: "
                f"{checked.broken.reason}); purging could destroy the evidence"
            )
        if dry_run:
            with self._reader() as db:
                return self._purge_plan(db, cutoff, dry_run=True)

        def purge_now() -> Purge:
            # Overwrite freed pages: expired personal data should not linger in free space
            # (it is ciphertext, but its retention period is over).
            self._db.execute("PRAGMA secure_delete=ON")
            try:
                return self._purge_plan(
                    self._db, cutoff, dry_run=False, operator=operator, reason=reason
                )
            finally:
                self._db.execute("PRAGMA secure_delete=OFF")

        return self._in_transaction(purge_now)

    def _purge_plan(
        self,
        db: sqlite3.Connection,
        cutoff: float,
        *,
        dry_run: bool,
        operator: str = "",
        reason: str = "",
    ) -> Purge:
        start = db.execute("SELECT MIN(seq) FROM records").fetchone()[0]
        young = db.execute(
            "SELECT MIN(seq) FROM records WHERE at >= ? OR at IS NULL", (cutoff,)
        ).fetchone()[0]
        if start is None:
            return Purge(0, 0, cutoff, None)
        tail = int(db.execute("SELECT MAX(seq) FROM records").fetchone()[0])
        first_kept = int(young) if young is not None else tail + 1
        removed = first_kept - int(start)
        if dry_run or removed <= 0:
            return Purge(max(removed, 0), first_kept, cutoff, None)
        link, oldest, newest = db.execute(
            "SELECT (SELECT hash FROM records WHERE seq = ?), MIN(at), MAX(at) "
            "FROM records WHERE seq < ?",
            (first_kept - 1, first_kept),
        ).fetchone()
        db.execute("DELETE FROM records WHERE seq < ?", (first_kept,))
        db.execute("DELETE FROM checkpoints WHERE seq < ?", (first_kept,))
        now = time.time()
        signature = sign(self.ring, *_anchor_parts(self.archive_id, first_kept, str(link), now))
        db.execute(
            "INSERT OR REPLACE INTO anchor VALUES (1, ?, ?, ?, ?)",
            (first_kept, str(link), now, signature),
        )
        entry = Entry(
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
                "removed": removed,
                "first_removed_seq": int(start),
                "last_removed_seq": first_kept - 1,
                "oldest_removed": datetime.fromtimestamp(oldest, UTC).isoformat(),
                "newest_removed": datetime.fromtimestamp(newest, UTC).isoformat(),
                "cutoff": datetime.fromtimestamp(cutoff, UTC).isoformat(),
            },
        )
        (seq,) = self._append_locked([seal(entry, self.ring)])
        self._checkpoint(force=True)
        return Purge(removed, first_kept, cutoff, seq)


def _stored(row: Sequence[Any]) -> Stored:
    return Stored(
        seq=int(row[0]),
        sealed=Sealed(
            record_key=row[1],
            kind=row[2],
            message_id=row[3],
            conversation_id=row[4],
            sender_ref=row[5],
            categories=row[6],
            at=float(row[7]),
            key_id=row[8],
            nonce=bytes(row[9]),
            ciphertext=bytes(row[10]),
        ),
        prev_hash=row[11],
        hash=row[12],
    )
