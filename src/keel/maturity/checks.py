"""Computing the scorecard from the project's real state: keel.yaml, the metadata store, the
artifact store and the project's git repository.

Production means every model version holding the `production` alias now. Items about it
are n/a while no model has one. Each check returns one `Item` with the evidence it found,
in words an operator can verify, and the command (or keel.yaml edit) that fixes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from keel.code.environment import LOCK_ARTIFACT
from keel.code.git import run_git
from keel.domain.duration import format_duration
from keel.maturity.model import ITEM_POINTS, Item, Scorecard, Status, build_scorecard, points_for

if TYPE_CHECKING:
    from keel.contracts import Contract
    from keel.domain.audit import AuditEvent
    from keel.domain.model import ModelVersion
    from keel.domain.run import Run
    from keel.workspace import Workspace

__all__ = ["PRODUCTION", "scorecard"]

PRODUCTION: Final = "production"
_SCORING_GATES: Final = frozenset({"metric_threshold", "beats_champion"})
_SKEW_SIGNALS: Final = frozenset({"row_skew", "distribution_skew"})


@dataclass(frozen=True)
class _Production:
    """One production version and the run that built it."""

    version: ModelVersion
    run: Run | None

    @property
    def ref(self) -> str:
        return self.version.ref


def _item(
    area: str, key: str, title: str, status: Status, evidence: str, fix: str | None = None
) -> Item:
    return Item(
        area=area,
        key=key,
        title=title,
        status=status,
        evidence=evidence,
        fix=None if status == "pass" else fix,
        points=points_for(status),
        max_points=ITEM_POINTS,
    )


_WORST_FIRST: Final[tuple[Status, ...]] = ("fail", "partial", "n/a")


def _worst(statuses: Sequence[Status]) -> Status:
    return next((s for s in _WORST_FIRST if s in statuses), "pass")


def _production(project: Workspace) -> list[_Production]:
    from keel.errors import NotFound

    found: list[_Production] = []
    metadata = project.metadata
    for model in metadata.models.list_models():
        for alias in model.aliases:
            if alias.name != PRODUCTION:
                continue
            version = metadata.models.get(model.name, alias.version)
            try:
                run: Run | None = metadata.runs.get(version.run_id)
            except NotFound:
                run = None
            found.append(_Production(version, run))
    return found


_NOTHING_IN_PRODUCTION: Final = "no model version holds production yet"


def _per_version(
    production: Sequence[_Production],
    judge: Callable[[_Production], tuple[Status, str]],
) -> tuple[Status, str]:
    if not production:
        return "n/a", _NOTHING_IN_PRODUCTION
    verdicts = [judge(p) for p in production]
    return _worst([s for s, _ in verdicts]), "; ".join(text for _, text in verdicts)


# --- ownership -----------------------------------------------------------------------------


def _ownership(project: Workspace) -> list[Item]:
    from keel.monitoring.alerts import effective_rules, owner_of

    spec = project.spec
    owners = spec.owners
    missing = owners.missing()
    shown = ", ".join(f"{stage}: {owners.of(stage) or '-'}" for stage in owners.SCOPES)
    count = len(owners.SCOPES)
    stages_status: Status = (
        "pass" if not missing else "fail" if len(missing) == count else "partial"
    )
    stages = _item(
        "ownership",
        "ownership.stages",
        "every stage has an owner",
        stages_status,
        shown + (f" ({len(missing)} of {count} unowned)" if missing else ""),
        "keel.yaml: "
        + ", ".join(f"owners.{stage}: <person or team>" for stage in missing)
        + "; check with `keel owners`",
    )
    rules = effective_rules(spec)
    unowned = [rule for rule in rules if owner_of(spec, rule) is None]
    alerts_status: Status
    if not rules:
        alerts_status, evidence = "n/a", "no alert rules (monitoring.alerts: [])"
    elif not unowned:
        alerts_status, evidence = "pass", f"all {len(rules)} alert rules resolve to an owner"
    else:
        alerts_status = "fail" if len(unowned) == len(rules) else "partial"
        names = ", ".join(f"{rule.name} ({rule.owner or 'monitoring'})" for rule in unowned)
        evidence = f"{len(unowned)} of {len(rules)} alert rules resolve to nobody: {names}"
    stages_needed = sorted(
        {
            rule.owner or "monitoring"
            for rule in unowned
            if (rule.owner or "monitoring") in owners.SCOPES
        }
    )
    alerts = _item(
        "ownership",
        "ownership.alerts",
        "every alert rule reaches an owner",
        alerts_status,
        evidence,
        "keel.yaml: "
        + (
            ", ".join(f"owners.{stage}: <person or team>" for stage in stages_needed)
            or "an owner: on each rule"
        )
        + "; check with `keel owners`",
    )
    return [stages, alerts]


# --- reproducibility ------------------------------------------------------------------------


def _reproducibility(project: Workspace, production: Sequence[_Production]) -> list[Item]:
    metadata, artifacts = project.metadata, project.artifacts
    project_dir = project.settings.project_dir

    def dataset(p: _Production) -> tuple[Status, str]:
        if p.run is None or p.run.dataset is None:
            return "fail", f"{p.ref}: its run records no dataset version"
        found = metadata.datasets.find(p.run.dataset)
        if found is None:
            return "fail", f"{p.ref}: dataset {p.run.dataset.short} is not recorded"
        if not artifacts.exists(found.parquet):
            return "fail", f"{p.ref}: dataset {found.short} is recorded, its data is missing"
        return "pass", f"{p.ref}: dataset {found.short} ({found.rows:,} rows) in the store"

    def code(p: _Production) -> tuple[Status, str]:
        commit = None if p.run is None else p.run.git_commit
        if commit is None:
            return "fail", f"{p.ref}: its run recorded no git commit (trained outside git)"
        done = run_git(project_dir, "cat-file", "-e", f"{commit}^{{commit}}")
        if done is None:
            return "fail", f"{p.ref}: commit {commit[:12]} could not be checked (no git here)"
        if done.returncode != 0:
            return "fail", f"{p.ref}: commit {commit[:12]} is not in this repository"
        if p.run is not None and p.run.git_dirty:
            return "partial", f"{p.ref}: commit {commit[:12]} plus uncommitted changes"
        return "pass", f"{p.ref}: commit {commit[:12]} is in the repository, clean"

    def environment(p: _Production) -> tuple[Status, str]:
        if p.run is None or p.run.environment is None:
            return "fail", f"{p.ref}: its run recorded no environment"
        lock = next((a for a in metadata.runs.artifacts(p.run.id) if a.name == LOCK_ARTIFACT), None)
        if lock is None or not artifacts.exists(lock.digest):
            return "fail", f"{p.ref}: {LOCK_ARTIFACT} is not in the store"
        return "pass", f"{p.ref}: environment lock {p.run.environment[:19]} in the store"

    retrain = "keel train, then keel promote MODEL@NEW --to production"
    items = []
    for key, title, judge, fix in (
        (
            "reproducibility.dataset",
            "production data snapshot present in the store",
            dataset,
            retrain,
        ),
        (
            "reproducibility.code",
            "production training code commit reachable in git",
            code,
            "commit the project (git add -A && git commit), then " + retrain,
        ),
        (
            "reproducibility.environment",
            "production environment lock recorded",
            environment,
            retrain,
        ),
    ):
        status, evidence = _per_version(production, judge)
        items.append(_item("reproducibility", key, title, status, evidence, fix))
    return items


# --- release control -----------------------------------------------------------------------


def _putting_move(events: Sequence[AuditEvent], version: int) -> AuditEvent | None:
    """The move that released `version` onto production: the newest one to it, looking
    past rollbacks (a rollback returns to a version that was released before)."""
    for event in reversed(events):
        if event.alias != PRODUCTION or event.evidence.get("to") != version:
            continue
        if event.kind == "alias.moved":
            return event
    return None


def _release(project: Workspace, production: Sequence[_Production]) -> list[Item]:
    from keel.errors import NotFound

    release = project.spec.release
    metric = project.spec.primary_metric
    metric_name = metric.name if metric is not None else "<metric>"
    guarding = [g for g in release.gates if g.applies_to(PRODUCTION)]
    scoring = [g for g in guarding if g.type in _SCORING_GATES]
    gates_status: Status = "pass" if scoring else "partial" if guarding else "fail"
    kinds = ", ".join(g.type for g in guarding) or "none"
    gates = _item(
        "release",
        "release.gates",
        "release gates guard production",
        gates_status,
        f"{len(guarding)} gate(s) guard production: {kinds}"
        + ("" if scoring or not guarding else " (none scores the model)"),
        f"keel.yaml: release.gates += {{type: beats_champion, metric: {metric_name}}}",
    )
    approvals = release.approvals
    approved = approvals.required >= 1 and PRODUCTION in approvals.aliases
    roles = f", roles {', '.join(approvals.roles)}" if approvals.roles else ""
    approvals_item = _item(
        "release",
        "release.approvals",
        "moves to production need an approval",
        "pass" if approved else "fail",
        f"{approvals.required} approval(s) for {', '.join(approvals.aliases) or 'no alias'}"
        + roles,
        "keel.yaml: release.approvals: {required: 1, aliases: [production]}",
    )

    def used(p: _Production) -> tuple[Status, str]:
        events = project.metadata.audit.events(
            model=p.version.model, kinds=["alias.moved", "release.approved"]
        )
        move = _putting_move(events, p.version.version)
        if move is None:
            return "fail", f"{p.ref}: no recorded move put it on production"
        evidence = move.evidence
        evaluated = False
        gates_text = "no gate evaluation"
        evaluation = evidence.get("evaluation")
        if evaluation:
            try:
                results = project.metadata.releases.evaluation(str(evaluation))
            except NotFound:
                results = []
            evaluated = bool(results) and all(r.passed for r in results)
            if results:
                gates_text = f"{sum(r.passed for r in results)}/{len(results)} gates passed"
            else:
                gates_text = "an evaluation with no gates"
        approvers = list(evidence.get("approved_by") or [])
        if not approvers and "canary_event" in evidence:
            approvers = [
                e.actor
                for e in events
                if e.kind == "release.approved"
                and e.version == p.version.version
                and e.alias == "canary"
                and e.seq < move.seq
            ]
        approval_text = f"approved by {', '.join(approvers)}" if approvers else "no approval"
        status: Status = (
            "pass" if evaluated and approvers else "partial" if evaluated or approvers else "fail"
        )
        return status, f"{p.ref}: event {move.seq} by {move.actor}, {gates_text}, {approval_text}"

    status, evidence = _per_version(production, used)
    used_item = _item(
        "release",
        "release.used",
        "today's production versions passed gates and an approval",
        status,
        evidence,
        "keel promote MODEL@VERSION --to production, then keel approve REQUEST_ID "
        "(as another person)",
    )
    return [gates, approvals_item, used_item]


# --- monitoring ----------------------------------------------------------------------------


def _monitoring(project: Workspace, production: Sequence[_Production], now: datetime) -> list[Item]:
    from keel.monitoring.alerts import default_rules

    spec = project.spec
    metadata = project.metadata
    log_on = spec.serving.log.enabled
    logged = {(s.model, s.version): s.rows + s.segment_rows for s in metadata.predictions.stats()}

    def serving(p: _Production) -> tuple[Status, str]:
        rows = logged.get((p.version.model, p.version.version), 0)
        if rows == 0:
            return "partial", f"{p.ref}: no prediction logged yet"
        if not spec.monitoring.prometheus:
            return "partial", f"{p.ref}: {rows:,} predictions logged; Prometheus export off"
        return "pass", f"{p.ref}: {rows:,} predictions logged, Prometheus export on"

    if not log_on:
        serving_status: Status = "fail"
        serving_text = "serving.log.enabled is false: served predictions are not logged"
    else:
        serving_status, serving_text = _per_version(production, serving)
    serving_item = _item(
        "monitoring",
        "monitoring.serving",
        "production predictions are logged",
        serving_status,
        serving_text,
        "keel.yaml: serving.log.enabled: true, monitoring.prometheus: true; then keel serve"
        if not log_on or not spec.monitoring.prometheus
        else "keel serve (or keel predict-batch MODEL@production ...) to log predictions",
    )

    recent = 2 * spec.monitoring.window

    def monitored(p: _Production) -> tuple[Status, str]:
        metrics = metadata.monitoring.latest_metrics(p.version.model)
        moments = [m.recorded_at or m.window_end for m in metrics]
        if not moments:
            return "fail", f"{p.version.model}: never monitored"
        newest = max(moments)
        age = max(now - newest, timedelta(0))
        text = f"{p.version.model}: last monitored {_ago(age)}"
        if age > recent:
            return "partial", text + f" (older than {format_duration(recent)})"
        return "pass", text

    status, evidence = _per_version(production, monitored)
    recent_item = _item(
        "monitoring",
        "monitoring.recent",
        f"a monitor run within {format_duration(recent)} (two windows)",
        status,
        evidence,
        "keel monitor MODEL (schedule it every monitoring.window)",
    )
    rules = spec.monitoring.alerts
    if rules is None:
        alert_status: Status = "partial"
        alert_text = f"keel's {len(default_rules(spec))} default rules; none in keel.yaml"
    elif not rules:
        alert_status, alert_text = "fail", "monitoring.alerts: [] turns every alert off"
    else:
        alert_status = "pass"
        alert_text = f"{len(rules)} rule(s) in keel.yaml: " + ", ".join(r.name for r in rules)
    alerts_item = _item(
        "monitoring",
        "monitoring.alerts",
        "alert rules written in keel.yaml",
        alert_status,
        alert_text,
        "keel.yaml: monitoring.alerts: [{name, signal, threshold, owner}, ...] "
        "(keel's defaults: keel owners --json lists them)",
    )
    return [serving_item, recent_item, alerts_item]


def _ago(age: timedelta) -> str:
    """An age in its largest whole unit, as people say it."""
    for unit, size in (("d", timedelta(days=2)), ("h", timedelta(hours=1))):
        if age >= size:
            step = timedelta(days=1) if unit == "d" else size
            return f"{age // step}{unit} ago"
    if age >= timedelta(minutes=1):
        return f"{age // timedelta(minutes=1)}m ago"
    return "under a minute ago"


# --- retraining ----------------------------------------------------------------------------


def _retraining(project: Workspace) -> Item:
    triggers = project.spec.retraining.triggers
    signals = []
    if triggers.drifted_features is not None:
        signals.append(f"drift in {triggers.drifted_features}+ features")
    if triggers.performance is not None:
        performance = triggers.performance
        signals.append(f"{performance.metric} {performance.side} {performance.threshold:g}")
    if triggers.new_labels is not None:
        signals.append(f"{triggers.new_labels:,} new labels")
    schedule = None if triggers.schedule is None else format_duration(triggers.schedule)
    if signals:
        status: Status = "pass"
        evidence = "retrains on " + ", ".join(signals)
        if schedule:
            evidence += f", and every {schedule}"
    elif schedule:
        status, evidence = "partial", f"only a schedule (every {schedule}): blind to production"
    else:
        status, evidence = "fail", "no retraining trigger"
    metric = project.spec.primary_metric
    return _item(
        "retraining",
        "retraining.triggers",
        "retraining triggered by production signals",
        status,
        evidence,
        "keel.yaml: retraining.triggers: {drifted_features: 3, performance: "
        f"{{metric: {metric.name if metric else '<metric>'}, below: <floor>}}}}",
    )


# --- data change management ----------------------------------------------------------------


def _data(project: Workspace, production: Sequence[_Production]) -> list[Item]:
    from keel.contracts import read_contract
    from keel.errors import KeelError
    from keel.models.evaluation import contract_evidence

    spec = project.spec
    data = spec.data
    contract = None
    contract_problem = None
    if data is None:
        contract_problem = "keel.yaml has no data section"
    elif not data.contract:
        contract_problem = "keel.yaml names no data.contract"
    else:
        try:
            contract = read_contract(project.settings.project_dir / data.contract)
        except KeelError as exc:
            contract_problem = f"{data.contract} cannot be read: {exc.message}"

    def checked(p: _Production) -> tuple[Status, str]:
        try:
            found = contract_evidence(project, p.version)
        except KeelError as exc:
            return "fail", f"{p.ref}: its contract report cannot be read: {exc.message}"
        if not found.checked:
            return "partial", f"{p.ref}: its training data was not checked"
        if not found.ok:
            return "fail", f"{p.ref}: its training data {found.detail}"
        return "pass", f"{p.ref}: training data {found.detail}"

    source = data.source if data is not None and isinstance(data.source, str) else "DATA"
    if contract_problem is not None:
        contract_status: Status = "fail"
        contract_text = contract_problem
        contract_fix = (
            f"keel contract infer {source} -o contracts/data.yaml; "
            "keel.yaml: data.contract: contracts/data.yaml"
        )
    else:
        contract_status, contract_text = _per_version(production, checked)
        if contract_status == "n/a":
            contract_status = "partial"
            contract_text = f"{data.contract if data else ''} configured; {_NOTHING_IN_PRODUCTION}"
        contract_fix = "keel train, then keel promote MODEL@NEW --to production"
    contract_item = _item(
        "data",
        "data.contract",
        "data contract configured and checked for production",
        contract_status,
        contract_text,
        contract_fix,
    )

    freshness = spec.monitoring.freshness
    found_rules = []
    missing = []
    times = _time_columns(project, contract)
    if contract is not None and contract.timestamp is not None:
        rule = contract.timestamp
        if freshness.data is not False:
            found_rules.append(
                f"data: {rule.column} at most {format_duration(rule.freshness)} old (contract)"
            )
        else:
            missing.append("monitoring.freshness.data: true")
    elif times == [] and freshness.data_limit is not None:
        # No time column to hold to a rule: the source's own time is what can be checked.
        basis = (
            "the source file's modification time"
            if data is not None and isinstance(data.source, str)
            else "the SQL source's newest snapshot time"
        )
        found_rules.append(
            f"data: at most {format_duration(freshness.data_limit)} old by {basis} "
            "(the data has no time column)"
        )
    elif times == []:
        missing.append(
            "monitoring.freshness.data: <how old the source may be, e.g. 2d> "
            "(the data has no time column: freshness is the source's modification "
            "or snapshot time)"
        )
    elif times is None:
        missing.append(
            "a contract timestamp rule (keel contract infer --timestamp COLUMN), or for data "
            "without a time column monitoring.freshness.data: <max age, e.g. 2d>"
        )
    else:
        missing.append(f"a contract timestamp rule (keel contract infer --timestamp {times[0]})")
    if freshness.predictions is not None:
        found_rules.append(f"predictions at most {format_duration(freshness.predictions)} apart")
    else:
        missing.append("monitoring.freshness.predictions: 1h")
    fresh_status: Status = "pass" if not missing else "partial" if found_rules else "fail"
    freshness_item = _item(
        "data",
        "data.freshness",
        "freshness checked for data and predictions",
        fresh_status,
        "; ".join(found_rules) or "no freshness check",
        "add " + " and ".join(missing),
    )

    entity = data.entity_key if data is not None else []
    if not entity or not spec.monitoring.skew:
        skew_status: Status = "fail"
        skew_text = (
            "monitoring.skew is false"
            if entity
            else "keel.yaml names no data.entity_key: served rows cannot be matched offline"
        )
        skew_fix = (
            "keel.yaml: monitoring.skew: true"
            if entity
            else "keel.yaml: data.entity_key: [<columns identifying a row>]"
        )
    else:
        recorded: dict[str, int] = {}
        for p in production:
            recorded[p.ref] = len(
                project.metadata.monitoring.latest_metrics(
                    p.version.model, signals=sorted(_SKEW_SIGNALS)
                )
            )

        def skew(p: _Production) -> tuple[Status, str]:
            count = recorded.get(p.ref, 0)
            if count == 0:
                return "partial", f"{p.version.model}: configured, no skew measured yet"
            return "pass", f"{p.version.model}: {count} skew signal(s) recorded"

        skew_status, skew_text = _per_version(production, skew)
        if skew_status == "n/a":
            skew_status = "partial"
            skew_text = f"entity key {', '.join(entity)}; {_NOTHING_IN_PRODUCTION}"
        skew_fix = "keel monitor MODEL (measures skew on the newest window)"
    skew_item = _item(
        "data",
        "data.skew",
        "training-serving skew measured",
        skew_status,
        skew_text,
        skew_fix,
    )
    return [contract_item, freshness_item, skew_item]


def _time_columns(project: Workspace, contract: Contract | None) -> list[str] | None:
    """The data's timestamp and date columns: from its contract, else its newest dataset
    version; None when neither is there to tell."""
    if contract is not None:
        return [c.name for c in contract.columns if c.type in ("timestamp", "date")]
    versions = project.metadata.datasets.list(limit=1)
    if not versions:
        return None
    return [name for name, kind in versions[0].columns if kind.startswith(("timestamp", "date"))]


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
