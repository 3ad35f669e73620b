"""`audit keygen` and `audit rotate`: the archive's key file, created and rotated."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bot.audit.keys import generate, load_file, replace_key_file, write_key_file
from bot.audit.store import ArchiveError
from bot.cli.common import guard


def register(commands: Any) -> None:
    """Add ``keygen`` and ``rotate`` to the ``audit`` subcommands."""
    keygen = commands.add_parser("keygen", help="create a key file (mode 0600), or - for stdout")
    keygen.add_argument("path", help="new key file, or - to print (for a vault)")
    keygen.add_argument("--key-id", default="k1")
    keygen.set_defaults(handler=cmd_keygen)

    rotate = commands.add_parser(
        "rotate", help="add a new current key to a key file; old keys stay for reading"
    )
    rotate.add_argument("path", type=Path)
    rotate.add_argument("key_id")
    rotate.set_defaults(handler=cmd_rotate)


@guard
def cmd_keygen(args: argparse.Namespace) -> int:
    """Write a new key file (never overwrites one), or print it for a vault."""
    ring = generate(args.key_id)
    if args.path == "-":
        print(ring.to_json())
        return 0
    path = Path(args.path)
    if path.exists():
        raise ArchiveError(f"{path} exists; refusing to overwrite a key file")
    write_key_file(path, ring)
    print(
        f"wrote {path} (mode 0600; key id {args.key_id}, fingerprint "
        f"{ring.fingerprint(args.key_id)}). Keep a copy in the firm's key vault: without it "
        "the archive cannot be read or verified."
    )
    return 0


@guard
def cmd_rotate(args: argparse.Namespace) -> int:
    """New records use the new key; old keys stay in the file to read old records."""
    rotated = load_file(args.path).rotate(args.key_id)
    replace_key_file(args.path, rotated)
    print(
        f"current key is now {args.key_id} (fingerprint {rotated.fingerprint(args.key_id)}); "
        f"{len(rotated.keys)} keys in {args.path}. Give the archiver the new file before the "
        "replicas."
    )
    return 0
