"""Registered models, their versions and aliases."""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping

from keel.domain.audit import AuditEvent
from keel.domain.digest import Digest
from keel.domain.model import CANDIDATE, Alias, ModelRef, ModelVersion, RegisteredModel

__all__ = ["ModelRegistry"]


class ModelRegistry(ABC):
    """Registered models: numbered versions of run outputs, and aliases on them.

    Versions of a model are numbered 1, 2, ... in registration order, without gaps, even
    when several processes register at once. A version is immutable; it holds its package
    object against gc (holder `model:<name>/<version>`). Aliases are movable names on
    versions; registration may set one (`candidate` by default) in the same transaction.
    Moving other aliases is the release workflow's job (gates, approvals, audit log), not
    this port's. Unknown models, versions and aliases are `NotFound`, naming what exists.
    """

    @abstractmethod
    def register(
        self,
        model: str,
        *,
        run_id: str,
        package: Digest,
        flavor: str,
        inference_contract: Mapping[str, object],
        metrics: Mapping[str, float],
        actor: str,
        alias: str | None = CANDIDATE,
        sign: Callable[[ModelVersion], Mapping[str, str]] | None = None,
        announce: bool = True,
    ) -> ModelVersion:
        """Record the next version of `model` (creating the model on first use).

        In one transaction: allocate the version number, hold `package`, and point `alias`
        (unless None) at the new version. `sign`, given the new version, returns the signature
        stored with it (`keel.models.signing.sign_version`). `ConfigError` for an invalid
        name, alias, metric or contract; `NotFound` if the run or the package object is not
        recorded; `Conflict` if the run failed.

        With `announce=False` (and no alias) the version is recorded without its
        `model.registered` event: `complete_registration` writes it, once the run completed
        with the reference profile recorded (what `keel train` does, so that a process killed
        in between leaves no version an alias points at).
        """

    @abstractmethod
    def complete_registration(
        self, model: str, version: int, *, alias: str | None, actor: str
    ) -> AuditEvent:
        """In one transaction: check that the version's run completed and its reference
        profile is recorded (`Conflict` naming what is missing otherwise), append its
        `model.registered` event and point `alias` at it. `Conflict` if it was announced."""

    @abstractmethod
    def record_signature(
        self, model: str, version: int, signature: Mapping[str, str], *, actor: str
    ) -> ModelVersion:
        """Store `signature` as the version's (replacing any), with a `model.signed` audit
        event; `NotFound` if the version does not exist."""

    @abstractmethod
    def get(self, model: str, version: int) -> ModelVersion:
        """One version; `NotFound` if the model or the version does not exist."""

    @abstractmethod
    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """The version a reference names: `name@3`, `name@alias`, `name@latest` or `name`
        (its newest version). `ConfigError` for a malformed reference, `NotFound` (naming
        the versions or aliases that do exist) for one that names nothing."""

    @abstractmethod
    def list_models(self) -> builtins.list[RegisteredModel]:
        """Every model with its newest version and aliases, by name."""

    @abstractmethod
    def versions(
        self, model: str, *, before: int | None = None, limit: int | None = None
    ) -> builtins.list[ModelVersion]:
        """The model's versions, newest first; `NotFound` for an unknown model. A page of
        them with `before` (only versions below it) and `limit`."""

    @abstractmethod
    def aliases(self, model: str) -> builtins.list[Alias]:
        """The model's aliases, by name; `NotFound` for an unknown model."""
