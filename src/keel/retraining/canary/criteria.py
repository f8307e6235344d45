"""The canary's rollback criteria: each compares the canary's slot with production's over the
period, and says whether there was enough data to judge it and whether its limit is breached
(what each measures and its limit: `keel.retraining.canary`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from keel.domain.metric import METRICS, improvement
from keel.serial import dump

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    from keel.workspace import Workspace

__all__ = [
    "FAILURE_P_VALUE",
    "MAX_EXCESS_FAILURES",
    "MIN_SPLIT_REQUESTS",
    "SCORE_OUTPUTS",
    "SPLIT_GRACE",
    "Criterion",
    "SlotSummary",
    "failures",
    "latency",
    "load_failures",
    "per_request",
    "performance",
    "performance_tolerance",
    "score_drift",
]

#: Share of its requests the canary may fail beyond production's before it is rolled back.
MAX_EXCESS_FAILURES: Final = 0.05
#: ... when the shortfall in its answered share is this unlikely under an equal failure rate.
FAILURE_P_VALUE: Final = 0.001
#: Requests the canary should have answered (by its share) before failures are judged.
MIN_SPLIT_REQUESTS: Final = 30
#: Left out of the failure count after the start: servers are still loading the canary.
SPLIT_GRACE: Final = timedelta(seconds=10)
#: The logged outputs whose distributions score drift compares, the first both have.
SCORE_OUTPUTS: Final = ("outputs.probability", "outputs.prediction")


@dataclass(frozen=True)
class SlotSummary:
    """One slot's rows over the period: counts, request latency and performance."""

    slot: str
    version: int | None
    predictions: int
    requests: int  # rows of one request share its time: counted once
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    labelled: int
    performance: float | None
    performance_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dump(self)


@dataclass(frozen=True)
class Criterion:
    """One rollback criterion: its value, the limit, whether there was enough data to judge
    it, and whether it is breached."""

    name: str  # failures | load | latency | score_drift | performance
    value: float | None
    limit: float | None
    judged: bool
    breached: bool
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        # `extra`'s keys sit beside the common ones: each criterion reports its own numbers.
        document = dump(self)
        document.update(document.pop("extra"))
        return document


def per_request(rows: pa.Table) -> pa.Table:
    """One row per request (`at`, `latency_ms_max`): a request's rows share its time and
    its latency, so a batch of 1,000 rows weighs as one request."""
    import pyarrow as pa

    if not rows.num_rows:
        return pa.table(
            {
                "at": rows["at"].combine_chunks(),
                "latency_ms_max": rows["latency_ms"].combine_chunks(),
            }
        )
    return rows.group_by("at").aggregate([("latency_ms", "max")])


def _unjudged(name: str, limit: float | None, detail: str, **extra: Any) -> Criterion:
    return Criterion(name, None, limit, False, False, detail, extra)


def _judged(
    name: str, value: float, limit: float, breached: bool, detail: str, **extra: Any
) -> Criterion:
    return Criterion(name, value, limit, True, breached, detail, extra)


def load_failures(project: Workspace, model: str, version: int, since: datetime) -> Criterion:
    events = [
        e
        for e in project.metadata.audit.events(model=model, kinds=["serving.load_failed"])
        if e.version == version and e.at >= since
    ]
    if not events:
        return _judged("load", 0, 0, False, "no server failed to load the canary")
    hosts = sorted({str(e.evidence.get("host", e.actor)) for e in events})
    error = (events[0].reason or "unknown error").splitlines()[0][:200]
    return _judged(
        "load",
        len(events),
        0,
        True,
        f"v{version} failed to load on {', '.join(hosts)} ({error})",
        events=[e.seq for e in events],
        hosts=hosts,
    )


def failures(
    canary_rows: pa.Table, production_rows: pa.Table, since: datetime, share: float
) -> Criterion:
    import pyarrow as pa
    import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]
    from scipy.stats import binom  # type: ignore[import-untyped,unused-ignore]

    def answered(rows: pa.Table) -> int:
        times = per_request(rows)["at"]
        kept = pc.greater_equal(times, pa.scalar(since, pa.timestamp("us", tz="UTC")))
        return int(pc.sum(kept).as_py() or 0)

    limit = MAX_EXCESS_FAILURES
    if not 0 < share < 1:
        detail = f"serving.canary_share is {share:g}: no split of requests to compare"
        return _unjudged("failures", limit, detail)
    n_c, n_p = answered(canary_rows), answered(production_rows)
    total = n_c + n_p
    counts = {"canary_requests": n_c, "production_requests": n_p, "since": since.isoformat()}
    if share * total < MIN_SPLIT_REQUESTS:
        needed = math.ceil(MIN_SPLIT_REQUESTS / share)
        detail = f"{total:,} requests answered; {needed:,} are needed at a {share:.0%} share"
        return _unjudged("failures", limit, detail, **counts)
    # Rounded: an exact split should read 0, not a float's 1e-16.
    excess = 0.0 if n_p == 0 else round(max(0.0, 1 - (n_c / n_p) * (1 - share) / share), 9)
    p_value = float(binom.cdf(n_c, total, share))
    detail = (
        f"the canary answered {n_c:,} of {total:,} requests ({n_c / total:.1%}; its share "
        f"is {share:.0%}): an estimated {excess:.1%} of its requests failed beyond "
        f"production's (p = {p_value:.2g})"
    )
    breached = excess >= limit and p_value < FAILURE_P_VALUE
    return _judged("failures", excess, limit, breached, detail, p_value=p_value, **counts)


def latency(canary: SlotSummary, production: SlotSummary, limit: float, enough: bool) -> Criterion:
    median, reference = canary.latency_p50_ms, production.latency_p50_ms
    if not enough or median is None or reference is None or reference <= 0:
        return _unjudged(
            "latency",
            limit,
            f"{canary.predictions:,} canary and {production.predictions:,} production "
            "predictions; min_predictions each are needed",
        )
    p99_ratio = None
    if canary.latency_p99_ms is not None and production.latency_p99_ms:
        p99_ratio = canary.latency_p99_ms / production.latency_p99_ms
    ratio = median / reference
    detail = (
        f"median latency {median:.3g} ms against production's {reference:.3g} ms "
        f"(x{ratio:.2f}; the limit is x{limit:g})"
    )
    return _judged("latency", ratio, limit, ratio > limit, detail, p99_ratio=p99_ratio)


def _scores(rows: pa.Table, name: str) -> Any:
    """The finite numbers of one output column, as float64 (None: not a numeric column)."""
    import numpy as np
    import pyarrow as pa

    if name not in rows.column_names:
        return None
    kind = rows[name].type
    if not (pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_boolean(kind)):
        return None
    values = rows[name].drop_null().to_numpy(zero_copy_only=False).astype(np.float64)
    return values[np.isfinite(values)]


def score_drift(
    canary_rows: pa.Table, production_rows: pa.Table, limit: float | None, enough: bool
) -> Criterion:
    from keel.stats.drift import TESTS

    if limit is None:
        return _unjudged("score_drift", None, "rollback.max_score_drift is off")
    if not enough:
        return _unjudged("score_drift", limit, "min_predictions in each slot are needed")
    for name in SCORE_OUTPUTS:
        canary, production = _scores(canary_rows, name), _scores(production_rows, name)
        if canary is None or production is None or not canary.size or not production.size:
            continue
        measure = TESTS["ks"].exact(production, canary)
        detail = (
            f"Kolmogorov-Smirnov distance {measure.statistic:.3f} between the canary's and "
            f"production's {name} (the limit is {limit:g})"
        )
        breached = measure.statistic > limit
        return _judged(
            "score_drift",
            measure.statistic,
            limit,
            breached,
            detail,
            output=name,
            p_value=measure.p_value,
        )
    return _unjudged("score_drift", limit, "no numeric output logged by both versions")


#: The default shortfall a canary may show: absolute for metrics bounded above by 1, else
#: relative to production's value (`canary.rollback.min_performance_delta` unset).
_BOUNDED_TOLERANCE: Final = 0.02
_RELATIVE_TOLERANCE: Final = 0.05


def performance_tolerance(name: str, production: float, configured: float | None) -> float:
    """How far below production (in the better direction) a canary's metric may fall."""
    if configured is not None:
        return configured
    if _bounded(name):
        return -_BOUNDED_TOLERANCE
    return -_RELATIVE_TOLERANCE * abs(production)


def _bounded(name: str) -> bool:
    known = METRICS.get(name)
    return known is not None and known.high is not None and known.high <= 1


def performance(
    canary: SlotSummary,
    production: SlotSummary,
    metric: tuple[str, bool] | None,
    configured: float | None,
) -> Criterion:
    fallback = configured if configured is not None else -_BOUNDED_TOLERANCE
    if metric is None:
        return _unjudged("performance", fallback, "no metric configured")
    name, higher_is_better = metric
    if canary.performance is None or production.performance is None:
        missing = canary if canary.performance is None else production
        detail = f"{name} of {missing.slot} unknown: {missing.performance_note}"
        return _unjudged("performance", fallback, detail, metric=name)
    limit = performance_tolerance(name, production.performance, configured)
    delta = improvement(
        canary.performance, production.performance, higher_is_better=higher_is_better
    )
    relative = configured is None and not _bounded(name)
    basis = f", {_RELATIVE_TOLERANCE:.0%} of production's {name}" if relative else ""
    detail = (
        f"{name} {canary.performance:.4f} on {canary.labelled:,} labelled canary predictions "
        f"against {production.performance:.4f} on {production.labelled:,} of production's "
        f"({delta:+.4f} in the better direction; the limit is {limit:+.4g}{basis})"
    )
    return _judged("performance", delta, limit, delta < limit, detail, metric=name)
