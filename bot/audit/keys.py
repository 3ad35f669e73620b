"""The firm's archive keys: where they come from (file, environment, command) and rotation."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

KEY_BYTES = 32  # AES-256-GCM


class ArchiveKeyError(Exception):
    """The archive key is missing, malformed or not the one the records need."""


@dataclass(frozen=True, slots=True)
class KeyRing:
    """Encryption keys by id (one current, older ones kept to read old records) + a signing key.

    The signing key signs checkpoints; it is separate from the encryption keys so that keys can
    rotate without re-signing history.
    """

    keys: dict[str, bytes]
    current: str
    signing: bytes

    def key(self, key_id: str) -> bytes:
        """The key with ``key_id``, or a clear error naming it (never the key itself)."""
        try:
            return self.keys[key_id]
        except KeyError:
            known = ", ".join(sorted(self.keys)) or "none"
            raise ArchiveKeyError(
                f"records were encrypted with key id {key_id!r}, "
                f"which this key ring lacks (it has: {known})"
            ) from None

    def to_json(self) -> str:
        """Serialise for a key file."""
        return json.dumps(
            {
                "current": self.current,
                "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()},
                "signing": base64.b64encode(self.signing).decode(),
            },
            indent=2,
        )


def generate(key_id: str = "k1") -> KeyRing:
    """A fresh key ring with one encryption key and a signing key."""
    return KeyRing(
        {key_id: secrets.token_bytes(KEY_BYTES)}, key_id, secrets.token_bytes(KEY_BYTES)
    )


def rotate(ring: KeyRing, new_id: str) -> KeyRing:
    """Add a new current key; old keys stay so old records remain readable."""
    if new_id in ring.keys:
        raise ArchiveKeyError(f"key id {new_id!r} already exists")
    return KeyRing({**ring.keys, new_id: secrets.token_bytes(KEY_BYTES)}, new_id, ring.signing)


def parse(material: str, source: str) -> KeyRing:
    """Read a key ring: the JSON key-file format, or one bare base64 key (id ``default``)."""
    text = material.strip()
    try:
        if text.startswith("{"):
            data = json.loads(text)
            keys = {str(k): _decode(v, source) for k, v in data["keys"].items()}
            current = str(data["current"])
            signing = _decode(data["signing"], source)
            if current not in keys:
                raise ArchiveKeyError(
                    f"{source}: current key id {current!r} is not among its keys"
                )
            return KeyRing(keys, current, signing)
        key = _decode(text, source)
        # One bare key: derive a distinct signing key so the two roles never share bytes.
        from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF  # noqa: PLC0415

        signing = HKDF(
            hashes.SHA256(), KEY_BYTES, salt=None, info=b"archive-checkpoint-signing"
        ).derive(key)
        return KeyRing({"default": key}, "default", signing)
    except (ValueError, KeyError, TypeError) as error:
        raise ArchiveKeyError(
            f"{source}: not a valid archive key ({type(error).__name__})"
        ) from None


def _decode(value: object, source: str) -> bytes:
    raw = base64.b64decode(str(value), validate=True)
    if len(raw) != KEY_BYTES:
        raise ArchiveKeyError(f"{source}: keys must be {KEY_BYTES} bytes (base64), got {len(raw)}")
    return raw


def load_from_environment(environ: dict[str, str] | None = None) -> KeyRing:
    """Find the key: BOT_ARCHIVE_KEY_FILE, else BOT_ARCHIVE_KEY, else BOT_ARCHIVE_KEY_COMMAND."""
    env = dict(os.environ if environ is None else environ)
    if path := env.get("BOT_ARCHIVE_KEY_FILE"):
        try:
            return parse(Path(path).read_text(encoding="utf-8"), "BOT_ARCHIVE_KEY_FILE")
        except OSError as error:
            raise ArchiveKeyError(
                f"BOT_ARCHIVE_KEY_FILE: cannot read {path}: {error.strerror}"
            ) from None
    if value := env.get("BOT_ARCHIVE_KEY"):
        return parse(value, "BOT_ARCHIVE_KEY")
    if command := env.get("BOT_ARCHIVE_KEY_COMMAND"):
        # A command that prints the key (a vault or KMS client): the key never touches disk.
        result = subprocess.run(  # noqa: S603  (the firm's own configured command)
            shlex.split(command), capture_output=True, text=True, timeout=30, check=False
        )
        if result.returncode != 0:
            raise ArchiveKeyError(
                f"BOT_ARCHIVE_KEY_COMMAND exited with status {result.returncode}"
            )
        return parse(result.stdout, "BOT_ARCHIVE_KEY_COMMAND")
    raise ArchiveKeyError(
        "no archive key: set BOT_ARCHIVE_KEY_FILE (create one with `python -m bot audit keygen`), "
        "BOT_ARCHIVE_KEY or BOT_ARCHIVE_KEY_COMMAND"
    )


def write_key_file(path: Path, ring: KeyRing) -> None:
    """Write a key file readable by its owner only (created 0600, never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(ring.to_json())
