"""A window's signals: drift, schema, nulls, ranges, categories, volume and performance."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from keel.domain.monitoring import Signal
from keel.monitoring.model import WindowResult
from keel.monitoring.service.plan import WindowPlan
from keel.monitoring.service.reading import _WindowState
from keel.monitoring.signals import window_signals

if TYPE_CHECKING:
    from keel.models.reference import Reference
    from keel.workspace import Workspace

__all__: list[str] = []


def _judge(
    project: Workspace,
    reference: Reference,
    columns: Sequence[str],
    states: Sequence[_WindowState],
    plan: WindowPlan,
    now: datetime,
) -> list[WindowResult]:
    from keel.stats.drift import compare_sketches

    spec = project.spec.monitoring
    test = None if spec.drift.test == "auto" else spec.drift.test
    results: list[WindowResult] = []
    volumes: list[int] = []
    for index, state in enumerate(states):
        # A window still filling (or the log's last, cut short) would read as a traffic
        # drop against full ones: its volume is judged once it is complete.
        partial = _partial(state, plan, now, last=index == len(states) - 1)
        volume = None
        if len(volumes) >= 3 and not partial:
            median = statistics.median(volumes[-7:])
            ratio = state.rows / median if median else None
            volume = Signal(
                "volume", "", ratio, False, None, {"rows": state.rows, "median": median}
            )
        if state.rows < spec.min_rows:
            # Too few rows to judge what they hold, but a complete window's count is a
            # signal of its own: traffic that collapses lands here. It never becomes part
            # of the baseline it is judged against.
            results.append(_not_judged(state, spec.min_rows, volume, partial=partial))
            continue
        present = [c for c in columns if c in state.sketch.columns]
        drift = compare_sketches(
            reference.sketch,
            state.sketch,
            test=test,
            threshold=spec.drift.threshold,
            columns=present,
        )
        signals = window_signals(
            reference.sketch, state.sketch, drift, state.counts, columns=columns
        )
        signals.append(Signal("predictions", "", float(state.rows)))
        if volume is not None:
            signals.append(volume)
        if not partial:
            volumes.append(state.rows)
        measured, labelled = _performance(project, state)
        coverage = labelled / state.rows if state.rows else None
        signals.append(Signal("label_coverage", "", coverage, False, None, {"labelled": labelled}))
        for name, (measured_value, note) in measured.items():
            detail = {"labelled": labelled, **({"note": note} if note else {})}
            signals.append(Signal("performance", name, measured_value, False, None, detail))
        metric = next(iter(measured), None)
        value = None if metric is None else measured[metric][0]
        results.append(
            WindowResult(
                start=state.start,
                end=state.end,
                rows=state.rows,
                versions=dict(state.versions),
                sketch=state.sketch,
                drift=drift,
                signals=signals,
                metric=metric,
                performance=value,
                labelled=labelled,
                coverage=coverage,
                partial=partial,
            )
        )
    return results


def _not_judged(
    state: _WindowState, min_rows: int, volume: Signal | None, *, partial: bool
) -> WindowResult:
    """A window too small to judge: its counts, its volume when it is complete, and a
    `not_judged` signal saying why (so stored history, the UI and `/metrics` know nothing
    else was measured)."""
    note = f"not judged: {state.rows:,} rows, fewer than min_rows {min_rows:,}"
    labelled = sum(len(labels) for labels in state.labels)
    coverage = labelled / state.rows if state.rows else None
    signals = [
        Signal("predictions", "", float(state.rows)),
        Signal("label_coverage", "", coverage, False, None, {"labelled": labelled}),
        Signal(
            "not_judged",
            "",
            float(state.rows),
            False,
            float(min_rows),
            {"rows": state.rows, "min_rows": min_rows, "note": note},
        ),
        *([volume] if volume is not None else []),
    ]
    return WindowResult(
        start=state.start,
        end=state.end,
        rows=state.rows,
        versions=dict(state.versions),
        sketch=state.sketch,
        drift=[],
        signals=signals,
        labelled=labelled,
        coverage=coverage,
        partial=partial,
        not_judged=note,
    )


def _partial(state: _WindowState, plan: WindowPlan, now: datetime, *, last: bool) -> bool:
    """Whether the window may still gain rows: the last of a row count short of it, one
    by prediction time that has not ended, the newest by event time (late events)."""
    if plan.rows is not None:
        return last and state.rows < plan.rows
    if plan.time == "event":
        return last
    return state.end > now


def _performance(
    project: Workspace, state: _WindowState
) -> tuple[dict[str, tuple[float | None, str | None]], int]:
    """Every monitored metric over the window's labelled predictions (the headline first),
    each with its value or why it has none, and how many predictions are labelled."""
    import numpy as np

    from keel.monitoring.feedback import measure, monitored_metrics

    names = monitored_metrics(project.spec)
    if not state.labels:
        return {name: (None, "no labels yet") for name in names}, 0
    labels = np.concatenate(state.labels).tolist()
    scores = np.concatenate(state.scores)
    predictions = np.concatenate(state.predictions).tolist()
    logged = bool(scores.size) and bool(np.isfinite(scores).all())
    measured = measure(
        names,
        labels,
        predictions=predictions,
        scores=scores.tolist() if logged else None,
        min_labels=1,
    )
    return measured, len(labels)
