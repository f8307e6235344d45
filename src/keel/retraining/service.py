"""`keel retrain`: when production calls for it, train a challenger, judge it against the
champion on the newest labelled traffic, record the decision, and release it as the policy
says.

    outcome = retrain(project, if_triggered=True)

1. Triggers (`keel.retraining.triggers`) read what monitoring and feedback stored.
2. The data source is snapshotted (a new dataset version when it changed) and the pipeline
   runs: contract, features, training, evaluation, registration of the challenger.
3. Champion and challenger score the same rows: the newest `retraining.evaluation_rows`
   predictions whose labels arrived, their inputs as the prediction log kept them. Each
   model computes its own features with its packaged code.
4. The decision, with the triggers and both scores as evidence, is an audit event
   (`retraining.decided`), written before any release step.
5. A challenger that scored at least `retraining.min_improvement` better is released by
   `retraining.promotion`: `manual` opens a request for `production` (approval by a second
   person, as the release policy says), `canary` puts it on `canary` (canary analysis
   promotes or rolls it back), `automatic` promotes it to `production` when the release
   policy needs no approval. Gates apply every time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from keel.domain.metric import direction_of, direction_words, improvement
from keel.errors import ConfigError
from keel.retraining.triggers import Trigger, champion, evaluate_triggers

if TYPE_CHECKING:
    from collections.abc import Sequence

    from keel.domain.model import ModelVersion
    from keel.release.service import PromotionResult
    from keel.spec import MetricSpec
    from keel.workspace import Workspace

__all__ = ["Comparison", "RetrainOutcome", "compare_on_recent", "retrain"]

_log = logging.getLogger(__name__)

#: The actor the loop acts as when no person runs it.
LOOP_ACTOR: Final = "keel-retrain"
#: How far back the newest labelled predictions are looked for.
_LOOKBACK: Final = timedelta(days=3650)


@dataclass(frozen=True)
class Comparison:
    """Champion and challenger scored on the same labelled production rows."""

    metric: str
    rows: int
    start: datetime | None
    end: datetime | None
    champion: int
    champion_value: float
    challenger: int
    challenger_value: float
    improvement: float  # in the metric's better direction
    needed: float
    higher_is_better: bool = True
    #: Labelled rows left out because the challenger may have trained on them (their event
    #: time is before its holdout boundary); a champion never saw today's traffic, and
    #: scoring a challenger on its own training rows would flatter it.
    left_out: int = 0
    #: Rows in the comparison the challenger may have trained on, when too few unseen rows
    #: were left to compare on (0 is a clean comparison).
    seen: int = 0

    @classmethod
    def judge(
        cls,
        metric: str,
        declared: Sequence[MetricSpec],
        *,
        champion: tuple[int, float],
        challenger: tuple[int, float],
        needed: float,
        rows: int,
        start: datetime | None = None,
        end: datetime | None = None,
        left_out: int = 0,
        seen: int = 0,
    ) -> Comparison:
        """The two (version, value) pairs compared in the metric's better direction, as
        keel.yaml declares it or keel knows it."""
        higher = direction_of(metric, declared)
        if higher is None:
            raise ConfigError(
                f"metrics: {metric!r} has no direction: give greater_is_better",
                problems=[("metrics", f"{metric}: give greater_is_better")],
            )
        gain = improvement(challenger[1], champion[1], higher_is_better=higher)
        return cls(
            metric,
            rows,
            start,
            end,
            champion[0],
            champion[1],
            challenger[0],
            challenger[1],
            gain,
            needed,
            higher,
            left_out,
            seen,
        )

    @property
    def passed(self) -> bool:
        return self.improvement >= self.needed

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "rows": self.rows,
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "champion": {"version": self.champion, "value": self.champion_value},
            "challenger": {"version": self.challenger, "value": self.challenger_value},
            "improvement": self.improvement,
            "needed": self.needed,
            "direction": direction_words(self.higher_is_better),
            "passed": self.passed,
            "left_out_seen_in_training": self.left_out,
            "seen_in_training": self.seen,
        }


@dataclass(frozen=True)
class RetrainOutcome:
    """What one pass of `retrain` decided and did."""

    model: str
    decision: (
        str  # not-triggered | no-change | kept-champion | pending | promoted | canary | refused
    )
    triggers: list[Trigger]
    challenger: int | None = None
    comparison: Comparison | None = None
    release: PromotionResult | None = None
    event: int | None = None  # seq of the `retraining.decided` audit event
    notes: list[str] = field(default_factory=list)

    @property
    def fired(self) -> list[Trigger]:
        return [t for t in self.triggers if t.fired]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "decision": self.decision,
            "triggers": [t.to_dict() for t in self.triggers],
            "fired": [t.name for t in self.fired],
            "challenger": self.challenger,
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "release": None if self.release is None else self.release.to_dict(),
            "event": self.event,
            "notes": self.notes,
        }


def retrain(
    project: Workspace,
    *,
    model: str | None = None,
    if_triggered: bool = True,
    now: datetime | None = None,
    as_of: datetime | None = None,
    actor: str | None = None,
) -> RetrainOutcome:
    """One pass of the loop for `model` (default: the project's)."""
    from keel.data.snapshot import snapshot
    from keel.domain.identity import Actor
    from keel.pipeline.train import train
    from keel.release.service import promote

    name = model or project.spec.name
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    who = actor or LOOP_ACTOR
    triggers = evaluate_triggers(project, name, now=moment)
    fired = [t for t in triggers if t.fired]
    if if_triggered and not fired:
        return RetrainOutcome(name, "not-triggered", triggers)
    current = champion(project, name)
    notes: list[str] = []
    snapshot(project)
    result = train(project, as_of=as_of or moment)
    challenger = result.registered
    if challenger is None:
        note = "; ".join(result.notes) or "training registered no new version"
        event = _decided(project, name, None, who, "no-change", triggers, None, note)
        return RetrainOutcome(name, "no-change", triggers, event=event, notes=[*notes, note])
    comparison = None
    if current is not None and current.version != challenger.version:
        comparison = compare_on_recent(project, current, challenger)
    if comparison is not None and not comparison.passed:
        note = (
            f"{challenger.ref} scored {comparison.metric} {comparison.challenger_value:.4f} "
            f"against {comparison.champion_value:.4f} for the champion v{comparison.champion} "
            f"on the newest {comparison.rows:,} labelled predictions "
            f"({direction_words(comparison.higher_is_better)}): improvement "
            f"{comparison.improvement:+.4f}, not better by {comparison.needed}"
        )
        event = _decided(
            project, name, challenger.version, who, "kept-champion", triggers, comparison, note
        )
        return RetrainOutcome(
            name,
            "kept-champion",
            triggers,
            challenger.version,
            comparison,
            event=event,
            notes=[*notes, note],
        )
    policy = project.spec.retraining.promotion
    target = "canary" if policy == "canary" else "production"
    reason = (
        "retraining: " + ", ".join(t.reason for t in fired) if fired else "retraining: run by hand"
    )
    event = _decided(
        project,
        name,
        challenger.version,
        who,
        f"release to {target}",
        triggers,
        comparison,
        reason,
    )
    release = promote(project, challenger.ref, target, actor=Actor(who), reason=reason[:500])
    if release.outcome == "refused":
        decision = "refused"
    elif release.outcome == "pending":
        decision = "pending"
    else:
        decision = "canary" if target == "canary" else "promoted"
    if policy == "automatic" and release.outcome == "pending":
        notes.append(
            "retraining.promotion is automatic, but the release policy requires approval "
            "for production: a request is open"
        )
    return RetrainOutcome(
        name, decision, triggers, challenger.version, comparison, release, event, notes
    )


def compare_on_recent(
    project: Workspace, champion_version: ModelVersion, challenger: ModelVersion
) -> Comparison | None:
    """Both versions scored on the newest labelled predictions of the model (None when none
    have labels yet): their inputs as logged, each model computing its own features."""
    import numpy as np
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    from keel.errors import KeelError
    from keel.metrics import evaluate
    from keel.models.loader import load_model
    from keel.models.signature import InferenceContract
    from keel.monitoring.skew import request_frame
    from keel.predlog.read import read_window

    spec = project.spec
    if not spec.metrics:
        raise ConfigError(
            "metrics: comparing champion and challenger needs a metric",
            problems=[("metrics", "name at least one metric")],
        )
    metric = spec.metrics[0]
    model = champion_version.model
    span = project.metadata.feedback.span(model)
    if span is None:
        return None
    wanted = spec.retraining.evaluation_rows
    end = span[1] + timedelta(microseconds=1)
    labelled = project.metadata.feedback.window(model, max(span[0], end - _LOOKBACK), end)
    labelled = labelled[-wanted:]
    if not labelled:
        return None
    labels = {row.prediction_id: row.label for row in labelled}
    start = labelled[0].at
    window = read_window(project, model, start, end)
    keep = pa.array([i in labels for i in window.column("id").to_pylist()])
    window = window.filter(keep)
    if window.num_rows == 0:
        return None
    window, left_out, seen = _unseen_by(project, challenger, window)
    truth = np.asarray([labels[i] for i in window.column("id").to_pylist()])
    values: dict[int, float] = {}
    for version in (champion_version, challenger):
        contract = InferenceContract.from_dict(version.inference_contract)
        frame = request_frame(window, contract)
        predictions, probabilities = load_model(project, version).score(frame)
        scores = None
        if probabilities is not None:
            matrix = np.asarray(probabilities)
            scores = matrix[:, 1] if matrix.ndim == 2 else matrix
        try:
            measured = evaluate([metric], truth, y_pred=predictions, y_score=scores)
        except KeelError as exc:
            _log.warning("cannot compare %s: %s", version.ref, exc.message)
            return None
        values[version.version] = measured[metric.name]
    return Comparison.judge(
        metric.name,
        spec.metrics,
        champion=(champion_version.version, values[champion_version.version]),
        challenger=(challenger.version, values[challenger.version]),
        needed=spec.retraining.min_improvement,
        rows=window.num_rows,
        start=start,
        end=labelled[-1].at,
        left_out=left_out,
        seen=seen,
    )


#: Fewest unseen rows worth comparing on; below it every labelled row is used, and the
#: comparison says how many of them the challenger may have trained on.
_MIN_UNSEEN: Final = 30


def _unseen_by(project: Workspace, challenger: ModelVersion, window: Any) -> tuple[Any, int, int]:
    """The logged rows the challenger cannot have trained on: those whose event time is at or
    after its holdout boundary (a time split's training rows are all earlier). Returns the
    rows to compare on, how many were left out, and how many that remain it may have seen."""
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

    from keel.domain.times import UTC_TIMESTAMP, NotATime, to_utc

    data = project.spec.data
    column = f"inputs.{data.timestamp}" if data is not None and data.timestamp else None
    if column is None or column not in window.column_names:
        return window, 0, 0
    text = project.metadata.runs.tags(challenger.run_id).get("split.boundary")
    if not text:
        return window, 0, 0
    boundary = datetime.fromisoformat(text)
    try:
        times = to_utc(window.column(column))
    except NotATime:
        return window, 0, 0
    at_boundary = pa.scalar(boundary.astimezone(UTC), type=UTC_TIMESTAMP)
    seen = pc.fill_null(pc.less(times, at_boundary), True)
    count = int(pc.sum(seen).as_py() or 0)
    if count == 0:
        return window, 0, 0
    unseen = window.filter(pc.invert(seen))
    if unseen.num_rows < _MIN_UNSEEN:
        return window, 0, count
    return unseen, count, 0


def _decided(
    project: Workspace,
    model: str,
    version: int | None,
    actor: str,
    decision: str,
    triggers: list[Trigger],
    comparison: Comparison | None,
    reason: str,
) -> int:
    event = project.metadata.audit.record(
        actor=actor,
        kind="retraining.decided",
        model=model,
        version=version,
        reason=reason[:500],
        evidence={
            "decision": decision,
            "triggers": [t.to_dict() for t in triggers],
            "comparison": None if comparison is None else comparison.to_dict(),
        },
    )
    return event.seq
