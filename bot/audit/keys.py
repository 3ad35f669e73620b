"""The firm's archive keys: where they come from (file, environment, command), rotation, checks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger(__name__)

KEY_BYTES = 32  # AES-256-GCM and HMAC-SHA256
COMMAND_TIMEOUT_SECONDS = 30.0

# Environment variables, in the order they are tried.
ENV_KEY_FILE = "BOT_ARCHIVE_KEY_FILE"
ENV_KEY = "BOT_ARCHIVE_KEY"
ENV_KEY_COMMAND = "BOT_ARCHIVE_KEY_COMMAND"


class ArchiveKeyError(Exception):
    """The archive key is missing, malformed, or not the one the records need.

    Messages name key ids, sources and fingerprints, never key material.
    """


def fingerprint(key: bytes) -> str:
    """A public check value for a key: names it in errors without revealing it (64 bits)."""
    return hmac.new(key, b"bot-audit key check v1", hashlib.sha256).hexdigest()[:16]


def _derive(signing: bytes, purpose: bytes) -> bytes:
    # One firm-held integrity key, a separate sub-key per use: a MAC made for one purpose can
    # never be replayed as another (a record hash as a checkpoint, say).
    return HKDF(hashes.SHA256(), KEY_BYTES, salt=None, info=b"bot-audit " + purpose).derive(
        signing
    )


@dataclass(frozen=True, slots=True)
class KeyRing:
    """Encryption keys by id (one current, older ones kept to read old records) + a signing key.

    The signing key authenticates the hash chain and signs checkpoints and the purge anchor; it
    is separate from the encryption keys so those can rotate without touching the chain. Key
    bytes are excluded from ``repr`` so a ring that reaches a log or a traceback leaks nothing.
    """

    keys: Mapping[str, bytes] = field(repr=False)
    current: str
    signing: bytes = field(repr=False)
    chain_key: bytes = field(init=False, repr=False, compare=False)
    checkpoint_key: bytes = field(init=False, repr=False, compare=False)
    sender_key: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Check the ring and derive the per-purpose sub-keys of the signing key."""
        if self.current not in self.keys:
            raise ArchiveKeyError(f"current key id {self.current!r} is not among the keys")
        for key_id, key in {**self.keys, "signing": self.signing}.items():
            if len(key) != KEY_BYTES:
                raise ArchiveKeyError(f"key {key_id!r} must be {KEY_BYTES} bytes, not {len(key)}")
        object.__setattr__(self, "chain_key", _derive(self.signing, b"chain v2"))
        object.__setattr__(self, "checkpoint_key", _derive(self.signing, b"checkpoint v2"))
        object.__setattr__(self, "sender_key", _derive(self.signing, b"sender-ref v2"))

    def key(self, key_id: str) -> bytes:
        """The key with ``key_id``, or a clear error naming it (never the key itself)."""
        try:
            return self.keys[key_id]
        except KeyError:
            known = ", ".join(sorted(self.keys)) or "none"
            raise ArchiveKeyError(
                f"key id {key_id!r} is not in the key ring (it has: {known}); "
                "add the old key to the key file to read these records"
            ) from None

    def fingerprint(self, key_id: str) -> str:
        """Fingerprint of the key with ``key_id``."""
        return fingerprint(self.key(key_id))

    @property
    def signing_fingerprint(self) -> str:
        """Fingerprint of the signing key (stored in the archive to catch a wrong key early)."""
        return fingerprint(self.signing)

    def rotate(self, new_id: str) -> KeyRing:
        """A ring with a fresh current key; old keys stay so old records remain readable."""
        if new_id in self.keys:
            raise ArchiveKeyError(f"key id {new_id!r} already exists")
        if not new_id or any(c.isspace() for c in new_id):
            raise ArchiveKeyError("a key id must be non-empty and contain no spaces")
        return KeyRing({**self.keys, new_id: secrets.token_bytes(KEY_BYTES)}, new_id, self.signing)

    def to_json(self) -> str:
        """Serialise for a key file (the caller writes it with mode 0600)."""
        return json.dumps(
            {
                "format": "bot-audit-keys/1",
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


def parse(material: str, source: str) -> KeyRing:
    """Read a key ring: the JSON key-file format, or one bare base64 key (id ``default``).

    Errors name the source and the kind of problem only: the material itself may be a key.
    """
    text = material.strip()
    try:
        if text.startswith("{"):
            data = json.loads(text)
            keys = {str(k): _decode(v, source) for k, v in data["keys"].items()}
            return KeyRing(keys, str(data["current"]), _decode(data["signing"], source))
        key = _decode(text, source)
        # One bare key: derive a distinct signing key so the two roles never share bytes.
        # (Rotation needs the JSON form, which can hold several keys.)
        return KeyRing({"default": key}, "default", _derive(key, b"signing from bare key"))
    except ArchiveKeyError as error:
        raise ArchiveKeyError(f"{source}: {error}") from None
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as error:
        # Deliberately not str(error): json and base64 errors quote the input.
        raise ArchiveKeyError(
            f"{source}: not a valid archive key ({type(error).__name__}); expected a key file "
            "from `python -m bot audit keygen` or one base64-encoded 32-byte key"
        ) from None


def _decode(value: object, source: str) -> bytes:
    raw = base64.b64decode(str(value), validate=True)
    if len(raw) != KEY_BYTES:
        raise ArchiveKeyError(f"keys must be {KEY_BYTES} bytes (base64), got {len(raw)}")
    return raw


def load_from_environment(environ: Mapping[str, str] | None = None) -> KeyRing:
    """Find the key: BOT_ARCHIVE_KEY_FILE, else BOT_ARCHIVE_KEY, else BOT_ARCHIVE_KEY_COMMAND."""
    env = os.environ if environ is None else environ
    if path := env.get(ENV_KEY_FILE):
        return load_file(Path(path))
    if value := env.get(ENV_KEY):
        return parse(value, ENV_KEY)
    if command := env.get(ENV_KEY_COMMAND):
        return load_command(command)
    raise ArchiveKeyError(
        f"no archive key: set {ENV_KEY_FILE} (create one with `python -m bot audit keygen PATH`), "
        f"{ENV_KEY} or {ENV_KEY_COMMAND}"
    )


def load_file(path: Path) -> KeyRing:
    """Read a key file; warns (path only) when others can read it."""
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except OSError as error:
        raise ArchiveKeyError(f"{ENV_KEY_FILE}: cannot read {path}: {error.strerror}") from None
    if mode & 0o077:
        log.warning(
            "archive key file is readable by group or others; chmod 600 it",
            extra={"path": str(path)},
        )
    return parse(text, f"{ENV_KEY_FILE} ({path})")


def load_command(command: str) -> KeyRing:
    """Run the firm's key command (a vault or KMS client); its stdout is the key or key file.

    The key never touches disk. stderr is not shown: a failing client may echo secrets.
    """
    try:
        result = subprocess.run(  # noqa: S603  (the firm's own configured command, no shell)
            shlex.split(command),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ArchiveKeyError(
            f"{ENV_KEY_COMMAND} did not finish within {COMMAND_TIMEOUT_SECONDS:.0f} s"
        ) from None
    except (OSError, ValueError) as error:
        raise ArchiveKeyError(
            f"{ENV_KEY_COMMAND} could not be run ({type(error).__name__})"
        ) from None
    if result.returncode != 0:
        raise ArchiveKeyError(f"{ENV_KEY_COMMAND} exited with status {result.returncode}")
    return parse(result.stdout, ENV_KEY_COMMAND)


def write_key_file(path: Path, ring: KeyRing) -> None:
    """Write a new key file readable by its owner only (created 0600; never overwrites)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(ring.to_json())
        handle.flush()
        os.fsync(handle.fileno())


def replace_key_file(path: Path, ring: KeyRing) -> None:
    """Atomically replace a key file (rotation): a crash leaves the old file or the new one."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.new")
    write_key_file(temporary, ring)
    try:
        temporary.replace(path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
