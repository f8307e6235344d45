"""Skew of one window: row-level, distribution, or both from one read of the log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from keel.monitoring.skew.distribution import _distribution_skew, _drift_options
from keel.monitoring.skew.results import RowSkewReport, SkewReport
from keel.monitoring.skew.rows import _check_options, _entity_key, _row_skew
from keel.monitoring.skew.serving import _Serving

if TYPE_CHECKING:
    from keel.stats.drift import DriftResult
    from keel.workspace import Workspace

__all__ = ["distribution_skew", "row_skew", "skew_report"]


def row_skew(
    project: Workspace,
    model: str,
    *,
    start: datetime,
    end: datetime,
    version: int | None = None,
    entity_key: Sequence[str] | None = None,
    source: str | None = None,
    tolerance: float = 1e-9,
    limit: int | None = None,
) -> RowSkewReport:
    """Row-level skew of `model` over the predictions logged in `[start, end)`.

    `version` defaults to the version that answered most of the window's requests; `entity_key`
    to keel.yaml's `data.entity_key`; `source` (a dataset version: `latest`, an id or a
    prefix) to the dataset the version was trained on. `limit` keeps the newest predictions.
    ConfigError without an entity key, NotFound for an unknown model or an empty window.
    """
    key = _entity_key(project, entity_key)
    _check_options(tolerance, limit)
    serving = _Serving.read(project, model, start, end, version, limit)
    return _row_skew(project, serving, key, source, tolerance)


def distribution_skew(
    project: Workspace,
    model: str,
    *,
    start: datetime,
    end: datetime,
    version: int | None = None,
    test: str | None = None,
    threshold: float | None = None,
) -> list[DriftResult]:
    """Serving features of the window's logged requests against the version's training
    features (its run's features step output, holdout rows left out), one drift result per
    feature. `test` and `threshold` default to keel.yaml's `monitoring.drift`."""
    test, threshold = _drift_options(project, test, threshold)
    serving = _Serving.read(project, model, start, end, version, None)
    return _distribution_skew(project, serving, test, threshold)


def skew_report(
    project: Workspace,
    model: str,
    *,
    start: datetime,
    end: datetime,
    version: int | None = None,
    entity_key: Sequence[str] | None = None,
    source: str | None = None,
    tolerance: float = 1e-9,
    test: str | None = None,
    threshold: float | None = None,
    limit: int | None = None,
) -> SkewReport:
    """`row_skew` and `distribution_skew` of one window, reading the log and computing the
    serving features once. Arguments as theirs; `limit` applies to both."""
    key = _entity_key(project, entity_key)
    _check_options(tolerance, limit)
    test, threshold = _drift_options(project, test, threshold)
    serving = _Serving.read(project, model, start, end, version, limit)
    rows = _row_skew(project, serving, key, source, tolerance)
    distribution = _distribution_skew(project, serving, test, threshold)
    return SkewReport(row=rows, distribution=tuple(distribution))
