"""`project.models()`, `project.model()` and `project.sign_model()`: registered models, one
model or version in full, and signing a version registered before keel signed packages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.domain.model import ModelVersion
    from keel.workspace import Workspace

__all__ = ["ModelDetail", "Models", "SignedModel", "model", "models", "sign_model"]


@dataclass(frozen=True)
class Models:
    """Every registered model by name, each with its newest version, whether that version is
    usable (`latest_status`), its version count and its aliases."""

    models: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"models": self.models}


@dataclass(frozen=True)
class ModelDetail:
    """A model with every version (`model`), or, for a version reference, that version in
    full (`version`, and the `registered` ModelVersion it documents); the other is None."""

    ref: str
    model: dict[str, Any] | None = None
    version: dict[str, Any] | None = None
    registered: ModelVersion | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.version is not None:
            return {"version": self.version}
        return {"model": self.model}


@dataclass(frozen=True)
class SignedModel:
    """A version carrying a signature that verifies: `signed` if it was signed now, false if
    its signature already verified (nothing changed)."""

    version: ModelVersion
    signed: bool

    @property
    def key_id(self) -> str | None:
        return None if self.version.signature is None else self.version.signature.get("key_id")

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.version.ref,
            "package": str(self.version.package),
            "key_id": self.key_id,
            "signed": self.signed,
        }


def models(project: Workspace) -> Models:
    """Every registered model (as `keel models list`), with its newest version's status."""
    from keel.release.documents import models_document

    return Models(models_document(project))


def model(project: Workspace, ref: str) -> ModelDetail:
    """A model and its versions (`ref` a name), or one version in full with its inference
    contract (`name@3`, `name@alias`, `name@latest`), as `keel models show`. A malformed
    reference is a `ConfigError`; a model or version that does not exist is `NotFound`."""
    from keel.domain.model import parse_model_ref
    from keel.release.documents import model_document, version_document

    parsed = parse_model_ref(ref)
    if parsed.kind != "model":
        version = project.metadata.models.resolve(parsed)
        return ModelDetail(ref, version=version_document(project, version), registered=version)
    return ModelDetail(ref, model=model_document(project, parsed.model))


def sign_model(project: Workspace, ref: str) -> SignedModel:
    """Sign the version `ref` names (`name@3`, `name@alias`) with the project's signing key,
    as `keel models sign`: for versions registered before keel signed packages, once
    reviewed. A version whose signature verifies is left as it is; a broken or foreign
    signature is replaced. Needs the private key (KEEL_KEYS); recorded in the audit log as
    `model.signed`. A bare model name is a `ConfigError` (name a version)."""
    from keel.domain.model import parse_model_ref
    from keel.errors import ConfigError, IntegrityError
    from keel.models.loader import sign_version
    from keel.models.signing import verify_version

    parsed = parse_model_ref(ref)
    if parsed.kind == "model":
        raise ConfigError(
            f"name a version: {ref}@VERSION (or {ref}@ALIAS)",
            problems=[("ref", "a version (name@3) or an alias (name@production), not a model")],
        )
    version = project.metadata.models.resolve(parsed)
    already = version.signature is not None
    if already:
        try:
            verify_version(project.keys.verifier(), version)
        except IntegrityError:
            already = False  # a broken or foreign signature: replaced after review
    if not already:
        version = sign_version(project, version)
    return SignedModel(version, signed=not already)
