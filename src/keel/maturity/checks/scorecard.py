"""The scorecard: every check run on the project's real state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from keel.maturity.checks.data import _data
from keel.maturity.checks.monitoring import _monitoring
from keel.maturity.checks.ownership import _ownership
from keel.maturity.checks.production import _production
from keel.maturity.checks.release import _release
from keel.maturity.checks.reproducibility import _reproducibility
from keel.maturity.checks.retraining import _retraining
from keel.maturity.model import Scorecard, build_scorecard

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["scorecard"]


def scorecard(project: Workspace, *, now: datetime | None = None) -> Scorecard:
    """The project's maturity scorecard, computed now from its spec, stores and git."""
    moment = now or datetime.now(UTC)
    production = _production(project)
    items = [
        *_ownership(project),
        *_reproducibility(project, production),
        *_release(project, production),
        *_monitoring(project, production, moment),
        _retraining(project),
        *_data(project, production),
    ]
    return build_scorecard(items)
