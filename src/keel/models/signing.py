"""Signatures of registered versions: what a server checks before it imports a package.

A package holds code that runs when it loads (the project's feature code, a python-function
model), so a hash alone proves only that the bytes are those the metadata store names. The
signature proves that the project's signing key registered exactly this package as exactly
this version. The signed bytes are the canonical JSON of

    {"kind": "keel/model-version", "version": 1,
     "model": NAME, "model_version": N, "package": DIGEST, "flavor": FLAVOR}

so whoever can write the metadata store cannot point version 5 at the package of version 4,
nor at a package of another model, without the private key. The signature is stored with
the version in the metadata store (it is no secret; only the key is), and verified with the
trusted public keys of `KEEL_KEYS` (`keel.keys.KeyRing.verifier`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

from keel.domain.digest import Digest
from keel.domain.model import ModelVersion
from keel.errors import IntegrityError
from keel.keys import Signature, Signer, Verifier

__all__ = ["CLAIM_KIND", "sign_version", "signed_claim", "verify_version"]

CLAIM_KIND: Final = "keel/model-version"
_CLAIM_VERSION: Final = 1


def signed_claim(model: str, version: int, package: Digest, flavor: str) -> bytes:
    """The bytes a version's signature covers (see the module docstring)."""
    document = {
        "kind": CLAIM_KIND,
        "version": _CLAIM_VERSION,
        "model": model,
        "model_version": version,
        "package": str(package),
        "flavor": flavor,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def sign_version(signer: Signer, version: ModelVersion) -> dict[str, str]:
    """The signature of `version` as stored with it (`Signature.to_dict`)."""
    claim = signed_claim(version.model, version.version, version.package, version.flavor)
    return signer.sign(claim).to_dict()


def _hint(version: ModelVersion) -> str:
    return (
        f"if {version.ref} is one you trust (registered before keel signed packages, or "
        f"reviewed), sign it with `keel models sign {version.ref}` where the project's "
        "signing key is; otherwise register the model again with `keel train`"
    )


def verify_version(verifier: Verifier, version: ModelVersion) -> None:
    """Return if `version` carries a trusted signature over its name, number, package and
    flavor; `IntegrityError` naming the version and the reason otherwise."""
    stored: Mapping[str, str] | None = version.signature
    if stored is None:
        raise IntegrityError(
            f"{version.ref} is not signed, so its package was not loaded "
            "(versions registered before keel signed packages have no signature)",
            hint=_hint(version),
        )
    what = f"{version.ref} (package {version.package.short})"
    signature = Signature.from_dict(stored, where=f"the signature of {version.ref}")
    claim = signed_claim(version.model, version.version, version.package, version.flavor)
    try:
        verifier.verify(claim, signature, what=what)
    except IntegrityError as exc:
        raise IntegrityError(
            f"{exc.message}; its package was not loaded (the signature covers the model's "
            "name, version number, package digest and flavor: one of them was changed, or "
            "another key signed it)",
            hint=exc.hint or _hint(version),
        ) from None
