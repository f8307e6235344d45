"""Signals of one window against the reference: pure functions of sketches, drift results and
the exact counts gathered while the window was read.

    signals = window_signals(reference, window, drift, counts)

Schema changes, null rates, out-of-range values, unseen categories, drift of each feature
and of the model's outputs, and the number of drifted features. Volume, performance and
freshness need history or the stores, and are measured by the service.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from keel.domain.monitoring import MonitorMetric, Signal

if TYPE_CHECKING:
    from keel.stats.drift import DriftResult
    from keel.stats.sketch import TableSketch

__all__ = [
    "NULL_RATE_TOLERANCE",
    "OUT_OF_RANGE_LIMIT",
    "UNSEEN_LIMIT",
    "WindowCounts",
    "drift_result",
    "drift_value",
    "window_signals",
]

#: Default limits of the signals' own verdicts (alert rules may set their own thresholds).
NULL_RATE_TOLERANCE = 0.05  # absolute increase of a feature's null rate
OUT_OF_RANGE_LIMIT = 0.01  # share of values outside the reference's range
UNSEEN_LIMIT = 0.01  # share of values in categories the reference never saw


@dataclass
class WindowCounts:
    """Exact counts gathered from the raw values of a window (mergeable by addition)."""

    out_of_range: dict[str, int] = field(default_factory=dict)
    unseen: dict[str, int] = field(default_factory=dict)
    unseen_examples: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, other: WindowCounts) -> None:
        for name, count in other.out_of_range.items():
            self.out_of_range[name] = self.out_of_range.get(name, 0) + count
        for name, count in other.unseen.items():
            self.unseen[name] = self.unseen.get(name, 0) + count
        for name, examples in other.unseen_examples.items():
            mine = self.unseen_examples.setdefault(name, {})
            for value, count in examples.items():
                mine[value] = mine.get(value, 0) + count


def drift_value(result: DriftResult) -> float:
    """The number a drift result is judged by: its normalised score when the test decides
    on it, else its statistic."""
    if result.decision == "score" and result.score is not None:
        return float(result.score)
    return float(result.statistic)


def window_signals(
    reference: TableSketch,
    window: TableSketch,
    drift: Sequence[DriftResult],
    counts: WindowCounts,
    *,
    columns: Sequence[str],
) -> list[Signal]:
    """Every per-column signal of the window, breached or not, in column order."""
    signals: list[Signal] = []
    for name in columns:
        ref = reference.columns.get(name)
        cur = window.columns.get(name)
        if ref is None:
            continue
        if cur is None or cur.count == 0 or (cur.nulls == cur.count and ref.nulls < ref.count):
            signals.append(
                Signal("schema", name, 1.0, True, 0.5, {"change": "missing", "column": name})
            )
            continue
        if cur.kind != ref.kind and cur.values > 0:
            detail = {"change": "type", "reference": ref.kind, "current": cur.kind}
            signals.append(Signal("schema", name, 1.0, True, 0.5, detail))
            continue
        signals.append(Signal("schema", name, 0.0, False, 0.5))
        if name.startswith("inputs."):
            change = cur.null_rate - ref.null_rate
            signals.append(
                Signal(
                    "null_rate",
                    name,
                    cur.null_rate,
                    change > NULL_RATE_TOLERANCE,
                    ref.null_rate + NULL_RATE_TOLERANCE,
                    {"reference": ref.null_rate, "nulls": cur.nulls, "rows": cur.count},
                )
            )
            signals.append(
                Signal(
                    "null_rate_change",
                    name,
                    change,
                    change > NULL_RATE_TOLERANCE,
                    NULL_RATE_TOLERANCE,
                    {"reference": ref.null_rate, "current": cur.null_rate},
                )
            )
            values = max(cur.values, 1)
            if ref.kind == "numeric" and name in counts.out_of_range:
                share = counts.out_of_range[name] / values
                signals.append(
                    Signal(
                        "out_of_range",
                        name,
                        share,
                        share > OUT_OF_RANGE_LIMIT,
                        OUT_OF_RANGE_LIMIT,
                        {"count": counts.out_of_range[name], "min": ref.min, "max": ref.max},
                    )
                )
            if ref.kind in ("categorical", "boolean") and name in counts.unseen:
                share = counts.unseen[name] / values
                examples = sorted(
                    counts.unseen_examples.get(name, {}).items(), key=lambda kv: -kv[1]
                )[:10]
                signals.append(
                    Signal(
                        "unseen_categories",
                        name,
                        share,
                        share > UNSEEN_LIMIT,
                        UNSEEN_LIMIT,
                        {"count": counts.unseen[name], "examples": dict(examples)},
                    )
                )
    for name in window.columns:
        new = name not in reference.columns and name.startswith(("inputs.", "outputs."))
        if new and window.columns[name].values > 0:
            signals.append(
                Signal("schema", name, 1.0, True, 0.5, {"change": "new", "column": name})
            )
    drifted = 0
    for result in drift:
        kind = "score_drift" if result.column.startswith("outputs.") else "drift"
        drifted += kind == "drift" and result.drifted
        signals.append(
            Signal(
                kind,
                result.column,
                drift_value(result),
                result.drifted,
                result.threshold,
                _drift_detail(result),
            )
        )
    features = [r for r in drift if not r.column.startswith("outputs.")]
    signals.append(
        Signal(
            "drifted_features",
            "",
            float(drifted),
            False,  # judged only by rules (retraining triggers use it too)
            None,
            {"features": [r.column for r in features if r.drifted], "tested": len(features)},
        )
    )
    return signals


def _drift_detail(result: DriftResult) -> Mapping[str, object]:
    return {
        "kind": result.kind,
        "method": result.method,
        "test": result.test,
        "statistic": result.statistic,
        "p_value": result.p_value,
        "score": result.score,
        "decision": result.decision,
        "reference_count": result.reference_count,
        "current_count": result.current_count,
    }


def drift_result(metric: MonitorMetric) -> DriftResult:
    """The drift result a stored `drift` or `score_drift` metric was recorded from: its
    detail is `_drift_detail`'s, with the signal's `breached` and `limit` (the threshold)."""
    from keel.stats.drift import DriftResult

    detail = metric.detail
    decision = detail.get("decision")
    method = detail.get("method")
    return DriftResult(
        column=metric.subject,
        kind=str(detail.get("kind", "")),
        test=str(detail.get("test", "")),
        statistic=float(detail.get("statistic") or 0.0),
        p_value=_number(detail.get("p_value")),
        score=_number(detail.get("score")),
        threshold=float(detail.get("limit") or 0.0),
        decision=decision if decision in ("p_value", "score") else "statistic",
        drifted=bool(detail.get("breached")),
        reference_count=int(detail.get("reference_count") or 0),
        current_count=int(detail.get("current_count") or 0),
        method="exact" if method == "exact" else "sketch",  # monitoring compares sketches
    )


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
