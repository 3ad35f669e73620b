"""One archive record: clear filter fields, the AES-GCM sealed payload, and its canonical bytes."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.audit.keys import ArchiveKeyError, KeyRing, fingerprint

FORMAT = 2  # stored in the archive; bump on any change to the bytes below
GENESIS = "0" * 64  # what record 1 links to
NONCE_BYTES = 12  # AES-GCM standard nonce; random, so < 2**32 records per key (NIST SP 800-38D)

# The kinds of record. Everything is appended; nothing is ever updated in place.
KINDS = ("message", "action", "review", "access", "purge")

_AAD_TAG = b"bot-audit record v2"
_CHAIN_TAG = b"bot-audit chain v2"


@dataclass(frozen=True, slots=True)
class Entry:
    """One record before sealing: what stays clear (for filters) and what is encrypted."""

    record_key: str  # idempotency key: the same record delivered twice is written once
    kind: str
    message_id: str
    conversation_id: str
    sender_id: str  # encrypted; only a keyed hash of it is stored in clear
    categories: tuple[str, ...]
    at: float  # unix seconds: export ranges and retention
    payload: dict[str, Any]  # text, names, findings, details: all encrypted


@dataclass(frozen=True, slots=True)
class Sealed:
    """An encrypted record, ready to chain (what replicas put on the Redis Stream)."""

    record_key: str
    kind: str
    message_id: str
    conversation_id: str
    sender_ref: str
    categories: str  # comma-separated
    at: float
    key_id: str
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True, slots=True)
class Stored:
    """A record as the archive holds it: its place in the chain plus the sealed record."""

    seq: int
    sealed: Sealed
    prev_hash: str
    hash: str


def frame(parts: Sequence[bytes]) -> bytes:
    """Canonical bytes for a list of fields: a table of 4-byte lengths, then the fields.

    Unambiguous for a given number of fields: no two different field lists give the same
    bytes. (A separator character would not do: a message id containing it could shift
    bytes from one field into the next and keep the hash.)
    """
    return struct.pack(f">{len(parts)}I", *map(len, parts)) + b"".join(parts)


def _public_parts(sealed: Sealed) -> tuple[bytes, ...]:
    return (
        sealed.record_key.encode(),
        sealed.kind.encode(),
        sealed.message_id.encode(),
        sealed.conversation_id.encode(),
        sealed.sender_ref.encode(),
        sealed.categories.encode(),
        repr(float(sealed.at)).encode(),
        sealed.key_id.encode(),
    )


def associated_data(sealed: Sealed) -> bytes:
    """The clear fields, bound to the ciphertext: moving a payload to another row fails."""
    return frame([_AAD_TAG, *_public_parts(sealed)])


def sender_reference(sender_id: str, ring: KeyRing) -> str:
    """Keyed hash of a sender id: finds one person's records without storing the id in clear.

    Keyed (HMAC) rather than a plain hash because staff ids are few and guessable: a plain
    hash could be reversed by hashing every id in the directory.
    """
    if not sender_id:
        return ""
    return hmac.new(ring.sender_key, sender_id.encode(), hashlib.sha256).hexdigest()[:32]


def seal(entry: Entry, ring: KeyRing) -> Sealed:
    """Encrypt the payload (and sender id) under the current key, bound to the clear fields."""
    if entry.kind not in KINDS:
        raise ValueError(f"unknown record kind {entry.kind!r}")
    nonce = os.urandom(NONCE_BYTES)
    header = Sealed(
        record_key=entry.record_key,
        kind=entry.kind,
        message_id=entry.message_id,
        conversation_id=entry.conversation_id,
        sender_ref=sender_reference(entry.sender_id, ring),
        categories=",".join(entry.categories),
        at=float(entry.at),
        key_id=ring.current,
        nonce=nonce,
        ciphertext=b"",
    )
    plaintext = json.dumps(
        {"sender_id": entry.sender_id, **entry.payload},
        ensure_ascii=False,
        default=str,
        separators=(",", ":"),
    ).encode()
    ciphertext = AESGCM(ring.key(ring.current)).encrypt(nonce, plaintext, associated_data(header))
    # Built again rather than dataclasses.replace(), which costs more than the encryption.
    return Sealed(
        header.record_key,
        header.kind,
        header.message_id,
        header.conversation_id,
        header.sender_ref,
        header.categories,
        header.at,
        header.key_id,
        nonce,
        ciphertext,
    )


def unseal(
    sealed: Sealed,
    ring: KeyRing,
    *,
    seq: int | None = None,
    expected_fingerprint: str | None = None,
) -> dict[str, Any]:
    """The decrypted payload; a missing, wrong or tampered key/record is reported as such.

    ``expected_fingerprint`` is the archive's note of which key was used under this id: with
    it, "you supplied a different key under the same id" is told apart from "the record was
    altered".
    """
    where = f"archive record {seq}" if seq is not None else f"record {sealed.record_key!r}"
    key = ring.keys.get(sealed.key_id)
    if key is None:
        raise ArchiveKeyError(
            f"{where} was encrypted with key id {sealed.key_id!r}, which is not in the key ring "
            f"(it has: {', '.join(sorted(ring.keys))}); add that key to read it"
        )
    if expected_fingerprint is not None and fingerprint(key) != expected_fingerprint:
        raise ArchiveKeyError(
            f"{where} was encrypted with key id {sealed.key_id!r} (fingerprint "
            f"{expected_fingerprint}), which does not match the key supplied under that id "
            f"(fingerprint {fingerprint(key)}): wrong key"
        )
    try:
        plaintext = AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, associated_data(sealed))
    except InvalidTag:
        raise ArchiveKeyError(
            f"{where} failed authentication under key id {sealed.key_id!r}: "
            "either the key is wrong or the record was altered"
        ) from None
    payload: dict[str, Any] = json.loads(plaintext)
    return payload


class ChainHasher:
    """The keyed hash that links records: HMAC-SHA256 over a record's canonical bytes.

    Keyed with a sub-key of the firm's signing key, so someone with write access to the file
    but not the key cannot rebuild a consistent chain after altering or removing a record:
    every record is authenticated, not only those a signed checkpoint happens to cover.
    The archive id is in every hash, so records cannot be transplanted between archives.
    """

    def __init__(self, ring: KeyRing, archive_id: str) -> None:
        """Bind to the firm's chain key and one archive."""
        self._mac = hmac.new(ring.chain_key, digestmod=hashlib.sha256)
        self._mac.update(frame((_CHAIN_TAG, archive_id.encode())))

    def __call__(self, seq: int, prev_hash: str, sealed: Sealed) -> str:
        """The hash of record ``seq`` linking to ``prev_hash``."""
        return self.row(
            seq, prev_hash, *_public_parts(sealed), bytes(sealed.nonce), bytes(sealed.ciphertext)
        )

    def row(self, seq: int, prev_hash: str, *fields: bytes) -> str:
        """The same from the stored fields as bytes (the verifier's fast path)."""
        mac = self._mac.copy()  # the key schedule and prefix are computed once
        mac.update(frame((str(seq).encode(), prev_hash.encode(), *fields)))
        return mac.hexdigest()


def sign(ring: KeyRing, *parts: str) -> str:
    """HMAC-SHA256 with the checkpoint sub-key over length-framed parts (checkpoints, anchor)."""
    return hmac.new(
        ring.checkpoint_key, frame([p.encode() for p in parts]), hashlib.sha256
    ).hexdigest()


def signature_ok(ring: KeyRing, signature: object, *parts: str) -> bool:
    """Constant-time check of :func:`sign`; a non-string (tampered) signature is simply wrong."""
    return isinstance(signature, str) and hmac.compare_digest(signature, sign(ring, *parts))
