"""Keys against an archive: a wrong key is named as such, rotation keeps old records readable."""

from __future__ import annotations

import os

import pytest

from bot.audit import Archive, ArchiveKeyError
from bot.audit.keys import KeyRing, generate
from tests.audit.helpers import entries, reopen


def test_a_different_key_under_the_same_id_is_called_a_wrong_key(
    archive: Archive, ring: KeyRing
) -> None:
    archive.append(entries(2))
    impostor = KeyRing({"k1": os.urandom(32)}, "k1", ring.signing)
    archive.close()
    with pytest.raises(ArchiveKeyError, match=r"current key id 'k1' names a different key"):
        Archive(archive.path, impostor)
    reader = Archive(archive.path, impostor, read_only=True)
    with pytest.raises(
        ArchiveKeyError,
        match=r"archive record 1 was encrypted with key id 'k1' .* does not match .*wrong key",
    ):
        reader.decrypt(next(reader.select()))


def test_a_wrong_signing_key_is_refused_when_opening(archive: Archive) -> None:
    archive.append(entries(1))
    archive.close()
    with pytest.raises(ArchiveKeyError, match="signing key does not match"):
        Archive(archive.path, generate(), read_only=True)


def test_rotation_keeps_old_records_readable_and_names_a_missing_old_key(
    archive: Archive, ring: KeyRing
) -> None:
    archive.append(entries(3))
    rotated = ring.rotate("k2")
    newer = reopen(archive, rotated)
    newer.append(entries(1, start=99))
    stored = list(newer.select())
    assert [s.sealed.key_id for s in stored] == ["k1", "k1", "k1", "k2"]
    assert all(newer.decrypt(s)["text"] == "hello" for s in stored)
    assert newer.verify().ok  # the chain does not depend on the encryption keys
    only_new = Archive(
        archive.path, KeyRing({"k2": rotated.keys["k2"]}, "k2", ring.signing), read_only=True
    )
    with pytest.raises(ArchiveKeyError, match=r"key id 'k1', which is not in the key ring"):
        only_new.decrypt(stored[0])
    assert only_new.decrypt(stored[3])["text"] == "hello"
