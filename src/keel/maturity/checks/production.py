"""What every check shares: the versions in production now, and how an item is built."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from keel.maturity.model import ITEM_POINTS, Item, Status, points_for

if TYPE_CHECKING:
    from keel.domain.model import ModelVersion
    from keel.domain.run import Run
    from keel.workspace import Workspace

__all__ = ["PRODUCTION"]


PRODUCTION: Final = "production"


@dataclass(frozen=True)
class _Production:
    """One production version and the run that built it."""

    version: ModelVersion
    run: Run | None

    @property
    def ref(self) -> str:
        return self.version.ref


def _item(
    area: str, key: str, title: str, status: Status, evidence: str, fix: str | None = None
) -> Item:
    return Item(
        area=area,
        key=key,
        title=title,
        status=status,
        evidence=evidence,
        fix=None if status == "pass" else fix,
        points=points_for(status),
        max_points=ITEM_POINTS,
    )


_WORST_FIRST: Final[tuple[Status, ...]] = ("fail", "partial", "n/a")


def _worst(statuses: Sequence[Status]) -> Status:
    return next((s for s in _WORST_FIRST if s in statuses), "pass")


def _production(project: Workspace) -> list[_Production]:
    from keel.errors import NotFound

    found: list[_Production] = []
    metadata = project.metadata
    for model in metadata.models.list_models():
        for alias in model.aliases:
            if alias.name != PRODUCTION:
                continue
            version = metadata.models.get(model.name, alias.version)
            try:
                run: Run | None = metadata.runs.get(version.run_id)
            except NotFound:
                run = None
            found.append(_Production(version, run))
    return found


_NOTHING_IN_PRODUCTION: Final = "no model version holds production yet"


def _per_version(
    production: Sequence[_Production],
    judge: Callable[[_Production], tuple[Status, str]],
) -> tuple[Status, str]:
    if not production:
        return "n/a", _NOTHING_IN_PRODUCTION
    verdicts = [judge(p) for p in production]
    return _worst([s for s, _ in verdicts]), "; ".join(text for _, text in verdicts)
