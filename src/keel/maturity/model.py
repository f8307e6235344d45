"""The scorecard's shape and its scoring: items, points, and the level they reach.

Each item is worth `ITEM_POINTS`: all of them when it passes, half when it partly does,
none when it fails or does not apply yet (`n/a`: there is no production version to judge).
n/a items stay in `max_score`, so a project's score only ever moves because the project
changed, and a project with nothing in production cannot look mature.

Levels are cumulative: a project is at level N when every item that levels 1 to N require
passes (partial is not enough). Level 4 requires every item. Pure: no storage, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from keel.serial import dump

__all__ = [
    "ITEM_POINTS",
    "LEVELS",
    "STATUSES",
    "Item",
    "Level",
    "Scorecard",
    "Status",
    "build_scorecard",
    "level_of",
]

Status = Literal["pass", "partial", "fail", "n/a"]
STATUSES: Final = ("pass", "partial", "fail", "n/a")

#: What one item is worth when it passes; a partial pass earns half.
ITEM_POINTS: Final = 2


@dataclass(frozen=True, slots=True)
class Item:
    """One line of the scorecard: what was checked, what was found, and what fixes it."""

    area: str
    key: str
    title: str
    status: Status
    evidence: str
    fix: str | None
    points: int
    max_points: int

    def to_dict(self) -> dict[str, Any]:
        return dump(self)


@dataclass(frozen=True, slots=True)
class Level:
    """A maturity level: its number, name, what it means, and the items it adds."""

    number: int
    name: str
    meaning: str
    requires: tuple[str, ...]


LEVELS: Final[tuple[Level, ...]] = (
    Level(0, "ad hoc", "models reach production with no record that would rebuild them", ()),
    Level(
        1,
        "reproducible",
        "every production model can be rebuilt: its data, code commit and environment",
        ("reproducibility.dataset", "reproducibility.code", "reproducibility.environment"),
    ),
    Level(
        2,
        "controlled",
        "releases pass gates and an approval, data passes its contract, each stage has an owner",
        (
            "ownership.stages",
            "release.gates",
            "release.approvals",
            "release.used",
            "data.contract",
        ),
    ),
    Level(
        3,
        "monitored",
        "production is logged and watched: recent monitoring, explicit owned alerts, freshness",
        (
            "monitoring.serving",
            "monitoring.recent",
            "monitoring.alerts",
            "ownership.alerts",
            "data.freshness",
        ),
    ),
    Level(
        4,
        "operated",
        "the loop closes: production signals trigger retraining and skew is measured",
        ("retraining.triggers", "data.skew"),
    ),
)


def level_of(items: Sequence[Item]) -> Level:
    """The highest level whose requirements, and those of every level below, all pass."""
    status = {item.key: item.status for item in items}
    reached = LEVELS[0]
    for level in LEVELS[1:]:
        if any(status.get(key) != "pass" for key in level.requires):
            break
        reached = level
    return reached


@dataclass(frozen=True, slots=True)
class Scorecard:
    """The project's maturity: every item, the score, and the level reached."""

    items: tuple[Item, ...]
    score: int
    max_score: int
    level: int
    level_name: str

    def item(self, key: str) -> Item:
        for item in self.items:
            if item.key == key:
                return item
        raise KeyError(key)

    @property
    def next_level(self) -> Level | None:
        """The level above this one, or None at the top."""
        return LEVELS[self.level + 1] if self.level + 1 < len(LEVELS) else None

    def blocking(self) -> list[Item]:
        """The items that keep the project from the next level."""
        following = self.next_level
        if following is None:
            return []
        return [i for i in self.items if i.key in following.requires and i.status != "pass"]

    def to_dict(self) -> dict[str, Any]:
        following = self.next_level
        return {
            "score": self.score,
            "max_score": self.max_score,
            "level": self.level,
            "level_name": self.level_name,
            "next_level": None
            if following is None
            else {
                "level": following.number,
                "name": following.name,
                "blocked_by": [i.key for i in self.blocking()],
            },
            "levels": [
                {
                    "level": level.number,
                    "name": level.name,
                    "meaning": level.meaning,
                    "requires": list(level.requires),
                }
                for level in LEVELS
            ],
            "items": [item.to_dict() for item in self.items],
        }


def points_for(status: Status) -> int:
    return {"pass": ITEM_POINTS, "partial": ITEM_POINTS // 2}.get(status, 0)


def build_scorecard(items: Sequence[Item]) -> Scorecard:
    """Score `items` and find their level."""
    level = level_of(items)
    return Scorecard(
        items=tuple(items),
        score=sum(item.points for item in items),
        max_score=sum(item.max_points for item in items),
        level=level.number,
        level_name=level.name,
    )
