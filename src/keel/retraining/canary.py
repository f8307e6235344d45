"""Canary analysis: the version holding `canary` judged against production's over the same
period, then promoted, rolled back, or watched longer.

    analysis = analyze_canary(project, "flights-delay")   # CanaryAnalysis; no side effects
    outcome = act_on_canary(project, "flights-delay")     # CanaryOutcome; acts on the verdict

The period starts when the later of the two holders took its alias (the canary's start, or
production's if it moved since) and ends now. Over it, from the prediction log, per slot
(`canary` rows of the canary's version, `production` rows of production's):

- **failures**: the log holds answered predictions only, and a model that raises answers
  500 and logs nothing, so a failing canary shows as a canary answering less than its
  share of requests (`serving.canary_share`). With `n_c` and `n_p` requests answered, the
  share of its requests the canary failed beyond production's is
  `1 - (n_c / n_p) (1 - share) / share`. Breached when that is at least
  `MAX_EXCESS_FAILURES` and the shortfall is significant (one-sided binomial test of
  `n_c` of `n_c + n_p` at `share`, p below `FAILURE_P_VALUE`); judged once the canary
  should have answered `MIN_SPLIT_REQUESTS`. The first `SPLIT_GRACE` (or three reload
  intervals) after the start is left out: servers take that long to load the canary.
  A version that fails to load on a server (`serving.load_failed` in the audit log since it
  took the alias) is breached at once.
- **latency**: the canary's median request latency over production's, against
  `retraining.canary.rollback.max_latency_ratio` (p99 and its ratio are reported).
- **score drift**: the Kolmogorov-Smirnov distance between the two versions' score
  distributions (`outputs.probability`, else `outputs.prediction`), against
  `rollback.max_score_drift` (None: not judged).
- **performance**: each version's metric (`monitoring.feedback.metric`, else the first of
  `metrics`) on its own labelled predictions, judged once both have `MIN_LABELS` labels;
  breached when the canary's value minus production's, in the metric's better direction, is
  below `rollback.min_performance_delta`.

Latency and score drift are judged once both slots have `min_predictions` predictions.
Verdicts: **rollback** as soon as a judged criterion is breached; **promote** once the
period has lasted `retraining.canary.duration`, both slots have `min_predictions`
predictions and nothing is breached (criteria not judged by then, such as performance
before labels arrive, are named in the reasons); **watch** otherwise.

Acting: a rollback removes `canary` (`canary.rolled_back` with the analysis as evidence,
then `alias.removed`, in one transaction), so production answers every request. A
promotion first evaluates the release gates that guard `production`, recorded with the
analysis; if they refuse, the canary is removed as for a rollback. If
`release.approvals` covers `production`, a release request is opened (once) and the canary
keeps serving until someone approves it; the check after the approval removes the canary.
Otherwise `canary.promoted` (the evidence), `production` moved and `canary` removed, in one
transaction. Every change is compare-and-set on the holders the analysis saw: a second
checker acting at the same time gets a conflict (reported as the `conflict` action,
nothing changed), never a second move.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from keel.domain.metric import METRICS, improvement
from keel.errors import ConfigError, Conflict, NotFound

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    from keel.domain.audit import AuditEvent
    from keel.domain.identity import Actor
    from keel.domain.release import GateResult, ReleaseRequest
    from keel.project import Project
    from keel.release.canary import CanaryRelease

__all__ = [
    "FAILURE_P_VALUE",
    "MAX_EXCESS_FAILURES",
    "MIN_SPLIT_REQUESTS",
    "SPLIT_GRACE",
    "CanaryAnalysis",
    "CanaryOutcome",
    "Criterion",
    "SlotSummary",
    "act_on_canary",
    "analyze_canary",
]

Verdict = Literal["promote", "rollback", "watch"]
#: What `act_on_canary` did.
Action = Literal[
    "none",  # no version holds canary
    "watch",  # not enough time or data yet: nothing changed
    "promoted",  # production moved to the canary's version; canary removed
    "requested",  # production needs approval: a release request was opened
    "pending",  # such a request is already open
    "refused",  # the release gates refuse it for production: canary removed
    "rolled_back",  # a criterion was breached: canary removed
    "cleared",  # the canary's version already holds production: canary removed
    "conflict",  # another checker changed the aliases first: nothing changed
]

#: Share of its requests the canary may fail beyond production's before it is rolled back.
MAX_EXCESS_FAILURES: Final = 0.05
#: ... when the shortfall in its answered share is this unlikely under an equal failure rate.
FAILURE_P_VALUE: Final = 0.001
#: Requests the canary should have answered (by its share) before failures are judged.
MIN_SPLIT_REQUESTS: Final = 30
#: Left out of the failure count after the start: servers are still loading the canary.
SPLIT_GRACE: Final = timedelta(seconds=10)

_CANARY: Final = "canary"
_PRODUCTION: Final = "production"
_SCORE_OUTPUTS: Final = ("outputs.probability", "outputs.prediction")
_COLUMNS: Final = ["id", "at", "version", "slot", "shadow_of", "latency_ms", *_SCORE_OUTPUTS]


# --- what the analysis returns --------------------------------------------------------------


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
        return dataclasses.asdict(self)


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
        return {
            "name": self.name,
            "value": self.value,
            "limit": self.limit,
            "judged": self.judged,
            "breached": self.breached,
            "detail": self.detail,
            **self.extra,
        }


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


@dataclass(frozen=True)
class CanaryOutcome:
    """What `act_on_canary` did, with the analysis it acted on."""

    action: Action
    model: str
    canary: int | None
    production: int | None
    analysis: CanaryAnalysis | None = None
    events: tuple[AuditEvent, ...] = ()
    request: ReleaseRequest | None = None
    evaluation: str | None = None
    gates: tuple[GateResult, ...] = ()
    note: str | None = None
    #: The release owner, answerable for a promotion (None: keel.yaml names nobody).
    owner: str | None = None
    #: Whom the gate evaluation concerns: the release owner, then the owners of failed gates.
    notify: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "action": self.action,
            "model": self.model,
            "canary": self.canary,
            "production": self.production,
            "verdict": None if self.analysis is None else self.analysis.verdict,
            "reasons": [] if self.analysis is None else list(self.analysis.reasons),
            "events": [{"seq": e.seq, "kind": e.kind} for e in self.events],
            "request": None if self.request is None else self.request.to_dict(),
            "evaluation": self.evaluation,
            "gates": [g.to_dict() for g in self.gates],
            "note": self.note,
            "owner": self.owner,
            "notify": list(self.notify),
            "analysis": None if self.analysis is None else self.analysis.to_dict(),
        }


# --- analysis -------------------------------------------------------------------------------


def analyze_canary(project: Project, model: str, *, now: datetime | None = None) -> CanaryAnalysis:
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
    from keel.serving.predictions import read_window

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
        _load_failures(project, model, canary.version, canary.set_at),
        _failures(canary_rows, production_rows, start + grace, share),
        _latency(canary_slot, production_slot, policy.rollback.max_latency_ratio, enough),
        _score_drift(canary_rows, production_rows, policy.rollback.max_score_drift, enough),
        _performance(canary_slot, production_slot, metric, policy.rollback.min_performance_delta),
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


def _metric(project: Project) -> tuple[str, bool] | None:
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


def _requests(rows: pa.Table) -> pa.Table:
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


def _summary(
    project: Project,
    model: str,
    rows: pa.Table,
    slot: str,
    version: int,
    start: datetime,
    end: datetime,
    metric: tuple[str, bool] | None,
) -> SlotSummary:
    import numpy as np

    requests = _requests(rows)
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


def _unjudged(name: str, limit: float | None, detail: str, **extra: Any) -> Criterion:
    return Criterion(name, None, limit, False, False, detail, extra)


def _judged(
    name: str, value: float, limit: float, breached: bool, detail: str, **extra: Any
) -> Criterion:
    return Criterion(name, value, limit, True, breached, detail, extra)


def _load_failures(project: Project, model: str, version: int, since: datetime) -> Criterion:
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


def _failures(
    canary_rows: pa.Table, production_rows: pa.Table, since: datetime, share: float
) -> Criterion:
    import pyarrow as pa
    import pyarrow.compute as pc
    from scipy.stats import binom  # type: ignore[import-untyped,unused-ignore]

    def answered(rows: pa.Table) -> int:
        times = _requests(rows)["at"]
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


def _latency(canary: SlotSummary, production: SlotSummary, limit: float, enough: bool) -> Criterion:
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


def _score_drift(
    canary_rows: pa.Table, production_rows: pa.Table, limit: float | None, enough: bool
) -> Criterion:
    from keel.stats.drift import TESTS

    if limit is None:
        return _unjudged("score_drift", None, "rollback.max_score_drift is off")
    if not enough:
        return _unjudged("score_drift", limit, "min_predictions in each slot are needed")
    for name in _SCORE_OUTPUTS:
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


def _performance(
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


def _span(delta: timedelta) -> str:
    seconds = max(0, round(delta.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m")) if v]
    if seconds or not parts:
        parts.append(f"{seconds}s")
    return " ".join(parts)


# --- acting ---------------------------------------------------------------------------------


def act_on_canary(
    project: Project,
    model: str,
    *,
    now: datetime | None = None,
    actor: Actor | str = "keel-canary",
) -> CanaryOutcome:
    """Analyse the canary and act on the verdict: promote it (through the release policy),
    roll it back, or leave it watched. Safe to run from several schedulers at once: each
    change is compare-and-set on the holders the analysis saw."""
    from keel.domain.identity import Actor

    try:
        analysis = analyze_canary(project, model, now=now)
    except NotFound:
        # (an unknown model raises NotFound here, naming the models there are)
        production = project.metadata.releases.holder(model, _PRODUCTION)
        return CanaryOutcome("none", model, None, production)
    who = Actor(actor) if isinstance(actor, str) else actor
    try:
        return _act(project, analysis, who)
    except Conflict as exc:
        return CanaryOutcome(
            "conflict",
            model,
            analysis.canary,
            analysis.production,
            analysis,
            note=f"{exc.message} (another check acted first)",
        )


def _act(project: Project, analysis: CanaryAnalysis, actor: Actor) -> CanaryOutcome:
    from keel.release.canary import clear_canary, promote_canary, roll_back_canary

    model, canary, production = analysis.model, analysis.canary, analysis.production
    if analysis.verdict == "watch":
        return CanaryOutcome("watch", model, canary, production, analysis)
    if analysis.verdict == "rollback":
        done = roll_back_canary(
            project,
            model,
            canary,
            actor=actor,
            reason=analysis.summary(),
            analysis=analysis.to_dict(),
        )
    elif production == canary:
        done = clear_canary(project, model, canary, actor=actor)
    else:
        done = promote_canary(
            project,
            model,
            canary,
            production=production,
            actor=actor,
            reason=analysis.summary(),
            analysis=analysis.to_dict(),
        )
    return CanaryOutcome(
        done.outcome,
        model,
        canary,
        production,
        analysis,
        done.events,
        done.request,
        done.evaluation,
        done.gates,
        _note(done),
        done.owner,
        done.notify,
    )


def _note(done: CanaryRelease) -> str | None:
    if done.request is None:
        return None
    if done.outcome == "pending":
        return f"waiting for approval of request {done.request.id} to move production"
    return (
        f"release.approvals covers production: request {done.request.id} needs "
        f"{done.request.required} approval(s); the canary keeps serving meanwhile"
    )
