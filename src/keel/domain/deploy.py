"""What `keel deploy render` can write: the deployment targets, by name."""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["TARGETS", "Target"]

Target = Literal["docker", "kubernetes", "kserve"]
TARGETS: Final[tuple[Target, ...]] = ("docker", "kubernetes", "kserve")
