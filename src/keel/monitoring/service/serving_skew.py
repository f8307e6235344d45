"""Training-serving skew measured on the newest window, when the project can."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Final

from keel.domain.monitoring import Signal
from keel.monitoring.model import WindowResult

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__: list[str] = []

#: The logger keel.monitoring.service has always used: logging configuration names it.
_log = logging.getLogger("keel.monitoring.service")


#: Share of rows whose online feature may differ from the offline recomputation.
ROW_SKEW_LIMIT: Final = 0.01


def _with_skew(project: Workspace, model: str, version: int, window: WindowResult) -> WindowResult:
    """The newest window with its skew signals: row-level against the newest snapshot of
    the data source (which holds the rows production scored, once they land), and the
    distribution of served features against training's."""
    from keel.errors import KeelError
    from keel.monitoring.signals import drift_value
    from keel.monitoring.skew import skew_report

    newest = project.metadata.datasets.list(limit=1)
    try:
        report = skew_report(
            project,
            model,
            start=window.start,
            end=window.end + timedelta(microseconds=1),
            version=version,
            source=str(newest[0].id) if newest else None,
        )
    except KeelError as exc:
        _log.info("no skew measured for the window ending %s: %s", window.end, exc.message)
        return window
    signals = list(window.signals)
    for feature in report.row.features:
        rate = feature.mismatch_rate
        if rate is None:
            continue
        signals.append(
            Signal(
                "row_skew",
                feature.feature,
                rate,
                rate > ROW_SKEW_LIMIT,
                ROW_SKEW_LIMIT,
                {"compared": feature.compared, "mismatches": feature.mismatches},
            )
        )
    for result in report.distribution:
        signals.append(
            Signal(
                "distribution_skew",
                result.column,
                drift_value(result),
                result.drifted,
                result.threshold,
                {"test": result.test, "p_value": result.p_value},
            )
        )
    return dataclasses.replace(window, signals=signals)
