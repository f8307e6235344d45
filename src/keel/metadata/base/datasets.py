"""Dataset versions: immutable snapshots of input data, by content hash."""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod

from keel.domain.dataset import DatasetVersion
from keel.domain.digest import Digest

__all__ = ["DatasetVersions"]


class DatasetVersions(ABC):
    """Recorded dataset versions (`keel data snapshot`), each holding its stored objects.

    A version is recorded once: its id is a content digest, so adding the same content
    again (even from two processes at once) keeps the first record.
    """

    @abstractmethod
    def add(self, version: DatasetVersion) -> DatasetVersion:
        """Record the version and hold its Parquet and profile objects, in one transaction.

        Returns the recorded version: `version` itself, or the earlier record of the same
        id. Both objects must already be recorded as artifacts (`NotFound` otherwise), so
        a version never points at bytes gc may take; an object put for a version whose
        `add` never happened stays unheld, and gc reclaims it.
        """

    @abstractmethod
    def get(self, id: Digest) -> DatasetVersion:
        """The version; `NotFound` if it was never recorded."""

    @abstractmethod
    def find(self, id: Digest) -> DatasetVersion | None:
        """The version, or None if it was never recorded."""

    @abstractmethod
    def resolve(self, ref: str) -> DatasetVersion:
        """The version a user named: `latest`, a full id, or a unique prefix of >= 6 hex.

        `NotFound` if nothing matches, `Conflict` (listing the candidates) if a prefix
        names several versions, `ConfigError` if `ref` cannot name a version at all.
        """

    @abstractmethod
    def list(self, *, limit: int | None = None) -> builtins.list[DatasetVersion]:
        """Versions, newest first."""

    @abstractmethod
    def count(self) -> int:
        """How many versions are recorded."""
