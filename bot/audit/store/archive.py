"""The Archive: opening the file, its meta and key checks, lifecycle, and appending to the chain.

Reading, verification, checkpoints and purge have their own modules in this package; the
Archive holds the connection and the lock and hands each its snapshot or transaction.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from bot.audit.keys import ArchiveKeyError, KeyRing
from bot.audit.records import FORMAT, GENESIS, ChainHasher, Entry, Sealed, Stored, seal
from bot.audit.store import checkpoints
from bot.audit.store import purge as retention
from bot.audit.store import query as reading
from bot.audit.store.checkpoints import CHECKPOINT_EVERY, CHECKPOINT_SECONDS, Checkpoint
from bot.audit.store.db import ArchiveError, connect_read_only, connect_writable, snapshot
from bot.audit.store.purge import Purge
from bot.audit.store.query import Query
from bot.audit.store.verify import Verification, Verifier

_T = TypeVar("_T")


class Archive:
    """The SQLite archive. Writes are serialised by a lock (and SQLite's own file lock).

    Append-only: SFC circular 18EC30 asks that records cannot be inappropriately modified or
    erased, so nothing is updated in place, and only a retention purge removes anything.
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
        self._last_checkpoint_at = checkpoints.last_signed_at(self._db)

    def _connect(self) -> sqlite3.Connection:
        if not self.read_only:
            return connect_writable(self.path)
        try:
            return connect_read_only(self.path)
        except (OSError, sqlite3.Error) as error:
            raise ArchiveError(f"cannot open archive {self.path}: {error}") from error

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
            meta = self._create_meta()
        if meta["format"] != str(FORMAT):
            raise ArchiveError(
                f"{self.path} is archive format {meta['format']}; this version reads {FORMAT}"
            )
        return meta

    def _create_meta(self) -> dict[str, str]:
        """A new archive: its format, a random id (inside every hash) and the signing key's."""
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
            if self._insert(seq, prev, digest, sealed):
                seqs.append(seq)
                seq, prev, added = seq + 1, digest, added + 1
            else:  # written before: at-least-once delivery, or a replay
                (existing,) = self._db.execute(
                    "SELECT seq FROM records WHERE record_key = ?", (sealed.record_key,)
                ).fetchone()
                seqs.append(int(existing))
        self._since_checkpoint += added
        if added and (
            self._since_checkpoint >= self.checkpoint_every
            or time.time() - self._last_checkpoint_at >= self.checkpoint_seconds
        ):
            self._checkpoint(force=True)
        return seqs

    def _insert(self, seq: int, prev: str, digest: str, sealed: Sealed) -> bool:
        """Insert one chained record; False when its ``record_key`` is already archived."""
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
        return bool(inserted)

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

    # -- checkpoints -----------------------------------------------------------------------
    def _checkpoint(self, *, force: bool) -> Checkpoint | None:
        """Sign the current tail (inside a transaction); skipped when already covered."""
        made = checkpoints.sign_tail(self._db, self.ring, self.archive_id, force=force)
        if made is not None:
            self._since_checkpoint = 0
            self._last_checkpoint_at = made.at
        return made

    def head(self) -> Checkpoint | None:
        """The newest signed checkpoint, made at the current tail first when possible.

        Ship its JSON off the machine (a witness) so a later truncation is detectable.
        """
        if not self.read_only:
            self._in_transaction(lambda: self._checkpoint(force=False))
        return checkpoints.newest(self._db, self.archive_id)

    # -- reading (bot.audit.store.query) ---------------------------------------------------
    def select(self, query: Query | None = None) -> Iterator[Stored]:
        """Stored records matching ``query``, in chain order (streamed: flat memory)."""
        with snapshot(self.path) as db:
            yield from reading.select(db, query or Query())

    def count(self, query: Query | None = None) -> int:
        """Records matching ``query``."""
        with snapshot(self.path) as db:
            return reading.count(db, query or Query())

    def message_record(self, message_id: str) -> Stored | None:
        """The ``message`` record of ``message_id``, if archived."""
        return next(iter(self.select(Query(message_id=message_id, kinds=("message",)))), None)

    def decrypt(self, stored: Stored) -> dict[str, Any]:
        """The decrypted payload of a record; a wrong or missing key is reported as such."""
        return reading.decrypt(self.path, self.ring, self.meta, stored)

    def stats(self) -> dict[str, Any]:
        """Counts and positions (no decryption): for operators and monitoring."""
        with snapshot(self.path) as db:
            counts = reading.stats(db)
        return {
            "path": str(self.path),
            "archive_id": self.archive_id,
            "format": int(self.meta["format"]),
            **counts,
            "bytes": sum(
                p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists()
            ),
        }

    # -- verification (bot.audit.store.verify) ---------------------------------------------
    def verify(self, witnesses: Sequence[Checkpoint] = ()) -> Verification:
        """Walk the chain and stop at the first break.

        Detects an altered record (its keyed hash), a removed one (a gap in seq), reordered
        ones (a broken link), a rewritten chain (needs the key), a forged anchor or checkpoint
        (signatures), and a truncated tail up to the newest checkpoint or witness.
        """
        with snapshot(self.path) as db:
            return Verifier(db, self.ring, self.archive_id, witnesses).run()

    # -- retention (bot.audit.store.purge) -------------------------------------------------
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
            with snapshot(self.path) as db:
                return retention.plan(db, cutoff).outcome()
        return self._in_transaction(lambda: self._purge_locked(cutoff, operator, reason))

    def _purge_locked(self, cutoff: float, operator: str, reason: str) -> Purge:
        # Overwrite freed pages: expired personal data should not linger in free space
        # (it is ciphertext, but its retention period is over).
        self._db.execute("PRAGMA secure_delete=ON")
        try:
            expired = retention.plan(self._db, cutoff)
            if not expired.removed:
                return expired.outcome()
            entry = retention.remove(
                self._db, expired, self.ring, self.archive_id, operator=operator, reason=reason
            )
            (seq,) = self._append_locked([seal(entry, self.ring)])
            self._checkpoint(force=True)
            return expired.outcome(seq)
        finally:
            self._db.execute("PRAGMA secure_delete=OFF")
