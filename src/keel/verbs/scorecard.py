"""`project.scorecard()`: the project's maturity scorecard, judged against a required level
and score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.maturity import Scorecard
    from keel.workspace import Workspace

__all__ = ["MaturityScorecard", "scorecard"]


@dataclass(frozen=True)
class MaturityScorecard:
    """The maturity of `project` (`card`: each item with its evidence and fix, the score and
    the level reached), with what was required of it: `shortfall` says, one line each, which
    of `min_level` and `min_score` it misses; `ok` is true when it misses none."""

    project: str
    card: Scorecard
    min_level: int | None = None
    min_score: int | None = None

    @property
    def shortfall(self) -> list[str]:
        from keel.maturity import LEVELS

        card, missed = self.card, []
        if self.min_level is not None and card.level < self.min_level:
            missed.append(
                f"BELOW --min-level {self.min_level} ({LEVELS[self.min_level].name}): "
                f"level {card.level} ({card.level_name})"
            )
        if self.min_score is not None and card.score < self.min_score:
            missed.append(f"BELOW --min-score {self.min_score}: score {card.score}")
        return missed

    @property
    def ok(self) -> bool:
        return not self.shortfall

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            **self.card.to_dict(),
            "required": {
                "min_level": self.min_level,
                "min_score": self.min_score,
                "shortfall": self.shortfall,
            },
        }


def scorecard(
    project: Workspace, *, min_level: int | None = None, min_score: int | None = None
) -> MaturityScorecard:
    """The project's maturity scorecard, computed now from keel.yaml, the stores and git (as
    `keel audit`). `result.ok` is false when the project is below `min_level` (0 ad hoc to 4
    operated) or `min_score`; either out of range is a `ConfigError` naming it. Records
    nothing."""
    from keel.errors import ConfigError
    from keel.maturity import LEVELS
    from keel.maturity import scorecard as compute

    problems = []
    if min_level is not None and not 0 <= min_level < len(LEVELS):
        problems.append(("min_level", f"must be from 0 to {len(LEVELS) - 1}"))
    if min_score is not None and min_score < 0:
        problems.append(("min_score", "must be 0 or more"))
    if problems:
        raise ConfigError(
            "; ".join(f"{field} {rule}" for field, rule in problems), problems=problems
        )
    return MaturityScorecard(project.spec.name, compute(project), min_level, min_score)
