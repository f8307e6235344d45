"""How old the newest prediction, label and data are at `now`."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.domain.monitoring import Signal

if TYPE_CHECKING:
    from keel.domain.dataset import DatasetVersion
    from keel.spec import SqlSource
    from keel.workspace import Workspace

__all__: list[str] = []

#: The logger keel.monitoring.service has always used: logging configuration names it.
_log = logging.getLogger("keel.monitoring.service")


def _freshness(
    project: Workspace, model: str, newest: datetime | None, now: datetime
) -> list[Signal]:
    spec = project.spec.monitoring.freshness
    signals: list[Signal] = []
    if newest is not None:
        age = max((now - newest).total_seconds(), 0.0)
        limit = spec.predictions.total_seconds() if spec.predictions is not None else None
        signals.append(
            Signal(
                "prediction_age",
                "",
                age,
                limit is not None and age > limit,
                limit,
                {"newest": newest.isoformat()},
            )
        )
    received = project.metadata.feedback.newest(model)
    if received is not None:
        age = max((now - received).total_seconds(), 0.0)
        limit = spec.feedback.total_seconds() if spec.feedback is not None else None
        signals.append(
            Signal(
                "feedback_age",
                "",
                age,
                limit is not None and age > limit,
                limit,
                {"newest": received.isoformat()},
            )
        )
    if spec.data is not False:
        signal = _data_age(project, now)
        if signal is not None:
            signals.append(signal)
    return signals


def _data_age(project: Workspace, now: datetime) -> Signal | None:
    """How old the data is, from the best time it has: the newest value of its timestamp
    column (held to the contract's freshness), else the source's own time, a file's
    modification time or a SQL source's newest snapshot (held to `freshness.data` as a
    duration). The signal says which (`measured_from`)."""
    from keel.contracts import read_contract
    from keel.domain.times import covers_until, kind_named

    data = project.spec.data
    if data is None:
        return None
    versions = project.metadata.datasets.list(limit=1)
    newest_version = versions[0] if versions else None
    limit = project.spec.monitoring.freshness.data_limit
    detail: dict[str, Any] = {}
    if newest_version is not None and newest_version.time_range is not None:
        newest = newest_version.time_range.end
        column = newest_version.time_range.column
        if kind_named(dict(newest_version.columns).get(column, "")) == "date":
            newest = covers_until(newest.date())  # the newest day counts until its end
        detail["measured_from"] = f"the newest {column} value"
        if data.contract:
            try:
                contract = read_contract(project.settings.project_dir / data.contract)
            except Exception:  # noqa: BLE001 - `keel contract check` reports a broken contract
                contract = None
            if contract is not None and contract.timestamp is not None:
                limit = contract.timestamp.freshness
    else:
        found = _source_time(project, data.source, newest_version)
        if found is None:
            return None
        newest, detail["measured_from"] = found
    if newest_version is not None:
        detail["dataset"] = str(newest_version.id)
    age = max((now - newest).total_seconds(), 0.0)
    seconds = None if limit is None else limit.total_seconds()
    return Signal(
        "data_age",
        "",
        age,
        seconds is not None and age > seconds,
        seconds,
        {"newest": newest.isoformat(), **detail},
    )


def _source_time(
    project: Workspace, source: str | SqlSource, newest: DatasetVersion | None
) -> tuple[datetime, str] | None:
    """When data without a time column last changed: its files' newest modification time,
    or, for a SQL source (or files no longer there), the newest snapshot's time."""
    from keel.data.read import resolve_source
    from keel.errors import DataError

    if isinstance(source, str):
        path = Path(source).expanduser()
        where = path if path.is_absolute() else project.settings.project_dir / path
        try:
            files = resolve_source(where)
            modified = max(f.stat().st_mtime for f in files)
        except (DataError, OSError) as exc:
            _log.info("data source %s: no modification time (%s)", source, exc)
        else:
            return datetime.fromtimestamp(modified, UTC), "the source file's modification time"
    if newest is None:
        return None
    kind = "SQL source" if not isinstance(source, str) else "dataset"
    return newest.created_at.astimezone(UTC), f"the {kind}'s newest snapshot time"
