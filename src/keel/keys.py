"""keel's keys: a folder of their own (`KEEL_KEYS`, default `<project>/.keel/keys`), never
the metadata store, so that whoever can write the database cannot also forge what the keys
vouch for.

- `signing.key`: the Ed25519 private key (PEM, mode 0600). Needed by whoever registers
  models or writes audit checkpoints (a trainer's machine, CI).
- `*.pub`: trusted Ed25519 public keys (PEM). Needed by whoever verifies: servers, `keel
  audit-log verify`. Keep an old one after rotating to trust what it signed.
- `secrets.key`: the Fernet key sealing secrets kept in the metadata store (webhook
  secrets), mode 0600.

The signing key is created on first use (mode 0600 in a 0700 folder) with its public key
beside it as `signing.pub`. A server that should verify but never sign mounts only the
`.pub` files (a Kubernetes Secret). Creation is safe against concurrent first uses: a key is
written to a temporary file and linked into place, so two processes never end with two keys.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from keel.errors import ConfigError, IntegrityError

__all__ = [
    "SECRET_PREFIX",
    "KeyRing",
    "SecretBox",
    "Signature",
    "Signer",
    "Verifier",
    "key_id",
]

SIGNING_KEY: Final = "signing.key"
SIGNING_PUB: Final = "signing.pub"
SECRETS_KEY: Final = "secrets.key"
#: What a sealed secret starts with: a stored value without it is plaintext from before.
SECRET_PREFIX: Final = "fernet:"  # noqa: S105 - a marker, not a secret


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable name of a public key: the first 16 hex digits of its SHA-256."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Signature:
    """An Ed25519 signature and the id of the key that made it."""

    key_id: str
    value: str  # base64url, no padding

    def to_dict(self) -> dict[str, str]:
        return {"algorithm": "ed25519", "key_id": self.key_id, "signature": self.value}

    @classmethod
    def from_dict(cls, data: object, *, where: str) -> Signature:
        """Parse `to_dict`'s output; `IntegrityError` naming `where` for anything else."""
        if (
            not isinstance(data, dict)
            or data.get("algorithm") != "ed25519"
            or not isinstance(data.get("key_id"), str)
            or not isinstance(data.get("signature"), str)
        ):
            raise IntegrityError(
                f"{where}: not an Ed25519 signature "
                "(expected algorithm 'ed25519', key_id and signature)"
            )
        return cls(key_id=data["key_id"], value=data["signature"])


class Signer:
    """Signs bytes with the project's private key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id(self.public)

    def sign(self, data: bytes) -> Signature:
        raw = self._private.sign(data)
        return Signature(self.key_id, base64.urlsafe_b64encode(raw).rstrip(b"=").decode())


class Verifier:
    """Checks signatures against the trusted public keys (every `*.pub` of the folder)."""

    def __init__(self, keys: dict[str, Ed25519PublicKey], folder: Path) -> None:
        self._keys = keys
        self._folder = folder

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def verify(self, data: bytes, signature: Signature, *, what: str) -> None:
        """Return if `signature` is a trusted key's over `data`, else `IntegrityError`."""
        public = self._keys.get(signature.key_id)
        if public is None:
            raise IntegrityError(
                f"{what} is signed by key {signature.key_id}, which is not trusted here "
                f"(trusted: {', '.join(sorted(self._keys)) or 'none'})",
                hint=f"put the signer's public key (a .pub file) in {self._folder}",
            )
        try:
            padded = signature.value + "=" * (-len(signature.value) % 4)
            public.verify(base64.urlsafe_b64decode(padded), data)
        except (InvalidSignature, binascii.Error, ValueError):
            raise IntegrityError(
                f"{what}: the signature by key {signature.key_id} does not match its content "
                "(changed after it was signed)"
            ) from None


class SecretBox:
    """Encrypts secrets kept in the metadata store (authenticated: a changed value fails)."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, plaintext: str) -> str:
        return SECRET_PREFIX + self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, stored: str, *, what: str) -> str:
        """The plaintext of `stored`; a value without the prefix is returned as is (stored
        before secrets were sealed)."""
        if not stored.startswith(SECRET_PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(SECRET_PREFIX) :].encode()).decode()
        except InvalidToken:
            raise IntegrityError(
                f"{what} cannot be decrypted with {SECRETS_KEY} (another key sealed it, "
                "or the stored value was changed)"
            ) from None


class KeyRing:
    """The keys of one folder, loaded (and the signing and secrets keys created) on demand."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def signer(self, *, create: bool = True) -> Signer:
        """The signing key; created with its `signing.pub` when missing and `create`."""
        path = self.folder / SIGNING_KEY
        if not path.exists():
            if not create:
                raise ConfigError(
                    f"no signing key: {path} does not exist",
                    hint="keel creates it on first registration; or copy the project's key there",
                )
            if (self.folder / SIGNING_PUB).exists():
                # The public half of the project's key is here, so its private half is kept
                # elsewhere: a new key would sign what no server that trusts this one accepts.
                raise ConfigError(
                    f"no signing key: {path} does not exist, but {SIGNING_PUB} beside it names "
                    "the project's key, which is kept elsewhere (a server's folder holds only "
                    "the public key)",
                    hint=f"copy the project's {SIGNING_KEY} there to sign on this machine",
                )
            generated = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            self._create(path, generated)
        private = self._load_private(path)
        pub = self.folder / SIGNING_PUB
        if not pub.exists():
            public_pem = private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            self._create(pub, public_pem, mode=0o644)
        return Signer(private)

    def verifier(self) -> Verifier:
        """Every trusted public key of the folder; `ConfigError` when there is none."""
        keys: dict[str, Ed25519PublicKey] = {}
        if self.folder.is_dir():
            for path in sorted(self.folder.glob("*.pub")):
                public = self._load_public(path)
                keys[key_id(public)] = public
        if not keys and (self.folder / SIGNING_KEY).exists():
            # A folder holding only the private key (copied by hand): its public half is implied.
            signer = self.signer(create=False)
            keys[signer.key_id] = signer.public
        if not keys:
            raise ConfigError(
                f"no public key to verify signatures with in {self.folder}",
                hint="mount the project's signing.pub there (KEEL_KEYS names the folder)",
            )
        return Verifier(keys, self.folder)

    def secret_box(self, *, create: bool = True) -> SecretBox:
        """The key sealing secrets at rest; created when missing and `create`."""
        path = self.folder / SECRETS_KEY
        if not path.exists():
            if not create:
                raise ConfigError(
                    f"no secrets key: {path} does not exist",
                    hint="copy the project's secrets.key there (KEEL_KEYS names the folder)",
                )
            self._create(path, Fernet.generate_key())
        key = path.read_bytes().strip()
        try:
            return SecretBox(key)
        except (ValueError, binascii.Error):
            raise ConfigError(f"{path}: not a Fernet key (44 base64url characters)") from None

    def _create(self, path: Path, content: bytes, *, mode: int = 0o600) -> None:
        """Write `content` at `path` unless another process wrote it first (theirs wins)."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _load_private(path: Path) -> Ed25519PrivateKey:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError):
            raise ConfigError(f"{path}: not a PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"{path}: not an Ed25519 key (keel signs with Ed25519)")
        return key

    @staticmethod
    def _load_public(path: Path) -> Ed25519PublicKey:
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except (ValueError, TypeError):
            raise ConfigError(f"{path}: not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigError(f"{path}: not an Ed25519 public key (keel signs with Ed25519)")
        return key
