"""keel's keys: created once (mode 0600 in a 0700 folder), outside the metadata store;
signatures verify only over the signed bytes and only with a trusted key."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from keel.errors import ConfigError, IntegrityError
from keel.keys import KeyRing, Signature
from keel.project import Project
from keel.settings import Settings
from keel.spec import ProjectSpec


def test_signing_key_is_private_and_created_once(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "keys")
    signers = []
    threads = [threading.Thread(target=lambda: signers.append(ring.signer())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({signer.key_id for signer in signers}) == 1
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "keys" / "signing.key").stat().st_mode) == 0o600
    assert (tmp_path / "keys" / "signing.pub").is_file()
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["signing.key", "signing.pub"]


def test_a_signature_verifies_only_its_own_bytes(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "keys")
    signature = ring.signer().sign(b"model package v1")
    verifier = ring.verifier()
    verifier.verify(b"model package v1", signature, what="package")
    round_trip = Signature.from_dict(signature.to_dict(), where="package.sig")
    verifier.verify(b"model package v1", round_trip, what="package")
    with pytest.raises(IntegrityError, match="does not match its content"):
        verifier.verify(b"model package v2", signature, what="package")


def test_a_key_not_in_the_folder_is_not_trusted(tmp_path: Path) -> None:
    theirs = KeyRing(tmp_path / "attacker").signer().sign(b"payload")
    ring = KeyRing(tmp_path / "keys")
    ring.signer()
    with pytest.raises(IntegrityError, match="not trusted here"):
        ring.verifier().verify(b"payload", theirs, what="package")


def test_a_server_with_only_the_public_key_verifies_but_cannot_sign(tmp_path: Path) -> None:
    signature = KeyRing(tmp_path / "keys").signer().sign(b"x")
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    (mounted / "signing.pub").write_bytes((tmp_path / "keys" / "signing.pub").read_bytes())
    server = KeyRing(mounted)
    server.verifier().verify(b"x", signature, what="package")
    with pytest.raises(ConfigError, match="no signing key"):
        server.signer(create=False)
    # Nor does it make a key of its own, which would sign what no server trusts.
    with pytest.raises(ConfigError, match="kept elsewhere"):
        server.signer()
    assert sorted(p.name for p in mounted.iterdir()) == ["signing.pub"]
    with pytest.raises(ConfigError, match="no public key"):
        KeyRing(tmp_path / "empty").verifier()


def test_malformed_signatures_and_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match=r"package\.sig: not an Ed25519 signature"):
        Signature.from_dict({"algorithm": "rsa"}, where="package.sig")
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "signing.pub").write_text("not a key")
    with pytest.raises(ConfigError, match=r"signing\.pub: not a PEM public key"):
        KeyRing(folder).verifier()


def test_secrets_are_sealed_and_tampering_is_caught(tmp_path: Path) -> None:
    box = KeyRing(tmp_path / "keys").secret_box()
    sealed = box.seal("hook-secret")
    assert "hook-secret" not in sealed
    assert box.open(sealed, what="webhook 1 secret") == "hook-secret"
    assert box.open("legacy-plaintext", what="webhook 1 secret") == "legacy-plaintext"
    other = KeyRing(tmp_path / "other").secret_box()
    with pytest.raises(IntegrityError, match="webhook 1 secret cannot be decrypted"):
        other.open(sealed, what="webhook 1 secret")


def test_keys_folder_comes_from_keel_keys(tmp_path: Path) -> None:
    spec = ProjectSpec(name="p")
    default = Settings.load(tmp_path, spec, {})
    assert default.keys_dir == tmp_path.resolve() / ".keel" / "keys"
    moved = Settings.load(tmp_path, spec, {"KEEL_KEYS": "/run/secrets/keel"})
    assert moved.keys_dir == Path("/run/secrets/keel")
    assert "KEEL_KEYS" not in moved.unknown_variables
    assert Project(moved, spec).keys.folder == Path("/run/secrets/keel")
