"""Health of the stores a project uses, as `keel status` reports it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StoreHealth"]


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """One store's health: what it is, where, whether it answered, and how fast."""

    kind: str  # "metadata" or "artifacts"
    backend: str  # "sqlite", "postgresql", "local", "s3"
    url: str  # with any password removed
    ok: bool
    detail: str
    latency_ms: float
