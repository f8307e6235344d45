"""The canary judged against production over one period: the slots' summaries, the rollback
criteria, and the verdict with its reasons. Reads only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from keel.errors import ConfigError, NotFound
from keel.retraining.canary.criteria import (
    SCORE_OUTPUTS,
    SPLIT_GRACE,
    Criterion,
    SlotSummary,
    failures,
    latency,
    load_failures,
    per_request,
    performance,
    score_drift,
)

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    from keel.workspace import Workspace

__all__ = ["CanaryAnalysis", "Verdict", "analyze_canary"]

Verdict = Literal["promote", "rollback", "watch"]

_CANARY: Final = "canary"
_PRODUCTION: Final = "production"
_COLUMNS: Final = ["id", "at", "version", "slot", "shadow_of", "latency_ms", *SCORE_OUTPUTS]


@dataclass(frozen=True)
class CanaryAnalysis:
    """The canary against production over one period, and the verdict with its reasons."""

    model: str
    canary: int
    production: int | None
    since: datetime  # when the canary took its alias
    start: datetime  # the period compared: [start, end)
    end: datetime
    duration: timedelta  # retraining.canary.duration
    min_predictions: int
    canary_share: float
    metric: str | None
    canary_slot: SlotSummary
    production_slot: SlotSummary
    criteria: tuple[Criterion, ...]
    verdict: Verdict
    reasons: tuple[str, ...]

    @property
    def elapsed(self) -> timedelta:
        return self.end - self.start

    @property
    def breached(self) -> tuple[Criterion, ...]:
        return tuple(c for c in self.criteria if c.breached)

    def criterion(self, name: str) -> Criterion | None:
        return next((c for c in self.criteria if c.name == name), None)

    def summary(self) -> str:
        """One line: the verdict and why (what audit events and requests carry as reason)."""
        head = {
            "promote": f"canary v{self.canary} passed",
            "rollback": f"canary v{self.canary} degraded",
            "watch": f"canary v{self.canary} still watched",
        }[self.verdict]
        return f"{head}: {'; '.join(self.reasons)}"[:1_000]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "canary": self.canary,
            "production": self.production,
            "since": self.since.isoformat(),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "elapsed_seconds": self.elapsed.total_seconds(),
            "duration_seconds": self.duration.total_seconds(),
            "min_predictions": self.min_predictions,
            "canary_share": self.canary_share,
            "metric": self.metric,
            "slots": {
                _CANARY: self.canary_slot.to_dict(),
                _PRODUCTION: self.production_slot.to_dict(),
            },
            "criteria": [c.to_dict() for c in self.criteria],
            "verdict": self.verdict,
            "reasons": list(self.reasons),
        }


def analyze_canary(
    project: Workspace, model: str, *, now: datetime | None = None
) -> CanaryAnalysis:
    """Compare the canary with production over `[start, now)` and give the verdict.

    `NotFound` when no version holds `canary`. Reads only: the aliases, the prediction log,
    the labels and the audit log's load failures."""
    end = now or datetime.now(UTC)
    if end.tzinfo is None:
        raise ConfigError(
            "analyze_canary: `now` must be timezone-aware", problems=[("now", "needs a zone")]
        )
    held = {a.name: a for a in project.metadata.models.aliases(model)}
    canary = held.get(_CANARY)
    if canary is None:
        raise NotFound(
            f"no version of {model} holds canary: there is nothing to analyse",
            hint=f"`keel promote {model}@N --to canary` starts a canary",
        )
    production = held.get(_PRODUCTION)
    policy = project.spec.retraining.canary
    share = project.spec.serving.canary_share
    metric = _metric(project)
    start = canary.set_at if production is None else max(canary.set_at, production.set_at)
    end = max(end, start)

    def result(
        canary_slot: SlotSummary,
        production_slot: SlotSummary,
        criteria: tuple[Criterion, ...],
        verdict: Verdict,
        reasons: list[str],
    ) -> CanaryAnalysis:
        return CanaryAnalysis(
            model=model,
            canary=canary.version,
            production=None if production is None else production.version,
            since=canary.set_at,
            start=start,
            end=end,
            duration=policy.duration,
            min_predictions=policy.min_predictions,
            canary_share=share,
            metric=None if metric is None else metric[0],
            canary_slot=canary_slot,
            production_slot=production_slot,
            criteria=criteria,
            verdict=verdict,
            reasons=tuple(reasons),
        )

    if production is None:
        return result(
            _empty(_CANARY, canary.version),
            _empty(_PRODUCTION, None),
            (),
            "watch",
            [
                "no version holds production: there is nothing to compare with (and nothing "
                "serves the model)"
            ],
        )
    if production.version == canary.version:
        return result(
            _empty(_CANARY, canary.version),
            _empty(_PRODUCTION, production.version),
            (),
            "promote",
            [f"v{canary.version} already holds production"],
        )
    from keel.predlog.read import read_window

    table = read_window(project, model, start, end, columns=_COLUMNS, missing_ok=True)
    canary_rows = _rows(table, _CANARY, canary.version)
    production_rows = _rows(table, _PRODUCTION, production.version)
    canary_slot = _summary(project, model, canary_rows, _CANARY, canary.version, start, end, metric)
    production_slot = _summary(
        project, model, production_rows, _PRODUCTION, production.version, start, end, metric
    )
    enough = min(canary_slot.predictions, production_slot.predictions) >= policy.min_predictions
    grace = max(SPLIT_GRACE, 3 * project.spec.serving.reload_interval)
    criteria = (
        load_failures(project, model, canary.version, canary.set_at),
        failures(canary_rows, production_rows, start + grace, share),
        latency(canary_slot, production_slot, policy.rollback.max_latency_ratio, enough),
        score_drift(canary_rows, production_rows, policy.rollback.max_score_drift, enough),
        performance(canary_slot, production_slot, metric, policy.rollback.min_performance_delta),
    )
    breached = [c for c in criteria if c.breached]
    if breached:
        return result(
            canary_slot, production_slot, criteria, "rollback", [c.detail for c in breached]
        )
    waiting = []
    if end - start < policy.duration:
        waiting.append(f"ran {_span(end - start)} of {_span(policy.duration)}")
    for slot in (canary_slot, production_slot):
        if slot.predictions < policy.min_predictions:
            waiting.append(
                f"{slot.slot} made {slot.predictions:,} of the {policy.min_predictions:,} "
                "predictions needed"
            )
    if waiting:
        return result(canary_slot, production_slot, criteria, "watch", waiting)
    reasons = [
        f"ran {_span(end - start)} (at least {_span(policy.duration)}) with "
        f"{canary_slot.predictions:,} canary predictions; no criterion breached"
    ]
    reasons += [f"{c.name} not judged: {c.detail}" for c in criteria if not c.judged]
    return result(canary_slot, production_slot, criteria, "promote", reasons)


def _metric(project: Workspace) -> tuple[str, bool] | None:
    """The performance metric and whether higher is better; None when there is none keel
    can compute from labels."""
    from keel.domain.metric import METRICS, direction_of

    spec = project.spec
    name = spec.monitoring.feedback.metric
    if name is None and spec.primary_metric is not None:
        name = spec.primary_metric.name
    if name is None or name not in METRICS:
        return None
    higher = direction_of(name, spec.metrics)
    return None if higher is None else (name, higher)


def _empty(slot: str, version: int | None) -> SlotSummary:
    return SlotSummary(slot, version, 0, 0, None, None, 0, None)


def _rows(table: pa.Table, slot: str, version: int) -> pa.Table:
    import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

    if not table.num_rows:
        return table
    return table.filter(pc.and_(pc.equal(table["slot"], slot), pc.equal(table["version"], version)))


def _summary(
    project: Workspace,
    model: str,
    rows: pa.Table,
    slot: str,
    version: int,
    start: datetime,
    end: datetime,
    metric: tuple[str, bool] | None,
) -> SlotSummary:
    import numpy as np

    requests = per_request(rows)
    p50 = p99 = None
    if requests.num_rows:
        latencies = requests["latency_ms_max"].to_numpy()
        p50, p99 = (float(v) for v in np.quantile(latencies, [0.5, 0.99]))
    labelled, value = 0, None
    note: str | None = "no metric configured"
    if metric is not None and rows.num_rows:
        from keel.monitoring.feedback import MIN_LABELS, score_window

        scored = score_window(
            project,
            model,
            rows,
            start,
            end,
            metric=metric[0],
            version=version,
            min_labels=MIN_LABELS,
        )[0]
        labelled, value, note = scored.labelled, scored.value, scored.note
    elif metric is not None:
        note = "no predictions"
    return SlotSummary(
        slot, version, rows.num_rows, requests.num_rows, p50, p99, labelled, value, note
    )


def _span(delta: timedelta) -> str:
    seconds = max(0, round(delta.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m")) if v]
    if seconds or not parts:
        parts.append(f"{seconds}s")
    return " ".join(parts)
