"""Objects the project knows about, and who stored them."""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from keel.domain.digest import Digest

__all__ = ["ArtifactRecord", "ArtifactRecords"]


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    """An object the project knows about, and who stored it."""

    digest: Digest
    size: int
    media_type: str
    created_at: datetime
    created_by: str


class ArtifactRecords(ABC):
    """Objects recorded in metadata, and the references (holders) that keep them alive.

    A holder is a string naming what needs the object, e.g. `dataset:3f2a...` or
    `run:42/model`. Garbage collection keeps every object with at least one holder.
    """

    @abstractmethod
    def record(
        self,
        digest: Digest,
        *,
        size: int,
        media_type: str,
        actor: str,
        holder: str | None = None,
    ) -> ArtifactRecord:
        """Record an object (idempotent) and, if given, a holder, in one transaction."""

    @abstractmethod
    def get(self, digest: Digest) -> ArtifactRecord:
        """The record; `NotFound` if the object was never recorded."""

    @abstractmethod
    def find(self, digest: Digest) -> ArtifactRecord | None:
        """The record, or None if the object was never recorded."""

    @abstractmethod
    def list(self, *, limit: int | None = None) -> builtins.list[ArtifactRecord]:
        """Records in the order they were made, oldest first."""

    @abstractmethod
    def count(self) -> int:
        """How many objects are recorded."""

    @abstractmethod
    def add_holder(self, digest: Digest, holder: str) -> None:
        """Reference a recorded object (idempotent); `NotFound` if it was never recorded."""

    @abstractmethod
    def remove_holder(self, digest: Digest, holder: str) -> None:
        """Drop one reference (idempotent)."""

    @abstractmethod
    def holders(self, digest: Digest) -> builtins.list[str]:
        """The holders of an object, sorted; empty if it has none."""

    @abstractmethod
    def referenced(self) -> set[Digest]:
        """Every digest with at least one holder: the roots garbage collection keeps."""

    @abstractmethod
    def forget(self, digests: Iterable[Digest]) -> int:
        """Delete records that have no holder; returns how many went."""
