"""keel.Project's verbs: typed results, and the CLI's `--json` is the verb's result document.

The CLI runs in-process; each Project verb is wrapped to keep what it returned, so every
check compares the document a command printed with the result of the very call it made,
on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

import keel
import keel.verbs
import keel.verbs as keel_verbs
from keel.ci.contract_test import ContractTestResult
from keel.ci.smoke import SmokeResult
from keel.cli.output import to_jsonable
from keel.deploy.envcheck import EnvironmentCheck
from keel.deploy.render import RenderResult
from keel.domain.monitoring import AlertDraft
from keel.errors import ConfigError, NotFound
from keel.events.webhooks import DeliveryReport
from keel.monitoring.model import MonitorReport
from keel.pipeline.reproduce import ReproduceReport
from keel.pipeline.train import TrainResult
from keel.predlog.read import CompactionReport
from keel.project import Project
from keel.release.service import DecisionResult, PromotionResult, RollbackResult
from keel.retraining.canary import CanaryOutcome
from keel.retraining.service import RetrainOutcome
from keel.serving.batch import BatchResult
from keel.verbs import (
    AlertDetail,
    Alerts,
    ArtifactList,
    AuditEvents,
    AuditVerification,
    CanaryStatus,
    CiSummary,
    CiWorkflow,
    ContractCheck,
    ContractDiff,
    DatasetComparison,
    DatasetDetail,
    Datasets,
    DisabledUser,
    DriftComparison,
    Explanation,
    FeedbackReport,
    GrafanaDashboard,
    InferredContract,
    LabelHistory,
    MaturityScorecard,
    ModelDetail,
    ModelLineage,
    Models,
    NewToken,
    NewWebhook,
    Ownership,
    PerformanceReport,
    PredictionStats,
    PrometheusRules,
    ReleaseRequestDetail,
    ReleaseRequests,
    RemovedWebhook,
    ResolvedAlert,
    RevokedToken,
    RunDetail,
    Runs,
    SignedModel,
    SkewCheck,
    Tokens,
    UserChange,
    Users,
    WatchPass,
    Webhooks,
)
from tests.fixtures.cli import Keel, Result
from tests.fixtures.trained import AS_OF, BASE, MODEL, TrainedOnPostgres, write_spec
from tests.fixtures.webhooks import Receiver

VERBS = [
    "train",
    "reproduce",
    "promote",
    "approve",
    "reject",
    "rollback",
    "predict_batch",
    "feedback",
    "monitor",
    "retrain",
    "canary_check",
    "explain",
    "audit",
    "audit_verify",
    "requests",
    "request",
    "canary_status",
    "performance",
    "label_history",
    "resolve_alert",
    "add_user",
    "disable_user",
    "create_token",
    "revoke_token",
    "add_webhook",
    "remove_webhook",
    "deliver_webhooks",
    "dataset_diff",
    "snapshot",
    "compact_predictions",
    "alerts",
    "alert",
    "owners",
    "lineage",
    "skew",
    "scorecard",
    "contract_check",
    "drift",
    "models",
    "model",
    "sign_model",
    "runs",
    "run",
    "datasets",
    "dataset",
    "prediction_stats",
    "contract_infer",
    "contract_diff",
    "prometheus_rules",
    "grafana_dashboard",
    "users",
    "tokens",
    "webhooks",
    "smoke_test",
    "contract_test",
    "ci_workflow",
    "ci_summary",
    "deploy_render",
    "env_check",
    "list_artifacts",
    "watch_pass",
]

Calls = dict[str, list[Any]]
#: A release policy under which promotions move at once (production needs an approval by
#: default).
NO_APPROVALS = {"approvals": {"required": 0}}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def flights(
    request: pytest.FixtureRequest, keel: Keel, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Path:
    """The trained flights project (v1; v2 and v3 too on SQLite), its store on each backend;
    the CLI and `_open` both reach it. (`keel` first: it clears KEEL_DB_URL.)"""
    if request.param == "sqlite":
        folder: Path = request.getfixturevalue("release_project")
        return folder
    template: TrainedOnPostgres = request.getfixturevalue("trained_postgres_template")
    url: str = request.getfixturevalue("trained_postgres_url")
    folder = tmp_path / "flights"
    shutil.copytree(template.folder, folder)
    monkeypatch.setenv("KEEL_DB_URL", url)
    return folder


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """What each Project verb returned, in order, while the test ran."""
    seen: Calls = {}

    def recording(name: str, verb: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: Project, *args: Any, **kwargs: Any) -> Any:
            result = verb(self, *args, **kwargs)
            seen.setdefault(name, []).append(result)
            return result

        return call

    for name in VERBS:
        monkeypatch.setattr(Project, name, recording(name, getattr(Project, name)))
    return seen


def _open(folder: Path, user: str = "ana") -> Project:
    env = {"KEEL_USER": user}
    if "KEEL_DB_URL" in os.environ:
        env["KEEL_DB_URL"] = os.environ["KEEL_DB_URL"]
    return Project.open(folder, env=env)


def _document(value: dict[str, Any]) -> dict[str, Any]:
    """`value` as `--json` prints it, without the `ok` every document starts with."""
    printed: dict[str, Any] = json.loads(json.dumps(to_jsonable(value)))
    printed.pop("ok", None)
    return printed


def _same(result: Result, calls: Calls, verb: str, kind: type) -> Any:
    """The verb's one result since the last check: of type `kind`, and the document the
    command printed."""
    assert len(calls.get(verb, [])) == 1, (verb, result.out + result.err)
    value = calls.pop(verb)[0]
    assert isinstance(value, kind)
    assert _document(result.json()) == _document(value.to_dict())
    return value


def test_project_carries_every_verb_with_its_signature() -> None:
    for name in VERBS:
        verb = getattr(keel.verbs, name)
        assert getattr(Project, name) is verb, name
        assert name in keel.verbs.__all__
        assert verb.__doc__ and verb.__doc__.strip(), name
        first = next(iter(inspect.signature(verb).parameters))
        assert first == "project", name
    assert callable(Project.serve_app)
    for name in ("actor",):
        kinds = {
            str(inspect.signature(getattr(keel.verbs, verb)).parameters[name].annotation)
            for verb in VERBS
            if name in inspect.signature(getattr(keel.verbs, verb)).parameters
        }
        assert kinds == {"ActorLike"}  # one actor type for every verb that acts


def test_keel_exports_the_result_types_and_imports_no_heavy_library() -> None:
    for kind in (
        TrainResult,
        ReproduceReport,
        PromotionResult,
        DecisionResult,
        RollbackResult,
        BatchResult,
        FeedbackReport,
        MonitorReport,
        RetrainOutcome,
        CanaryOutcome,
        Explanation,
        AuditEvents,
        AuditVerification,
        ReleaseRequests,
        ReleaseRequestDetail,
        CanaryStatus,
        PerformanceReport,
        LabelHistory,
        ResolvedAlert,
        UserChange,
        DisabledUser,
        NewToken,
        RevokedToken,
        NewWebhook,
        RemovedWebhook,
        DeliveryReport,
        DatasetComparison,
        CompactionReport,
        Alerts,
        AlertDetail,
        Ownership,
        ModelLineage,
        SkewCheck,
        MaturityScorecard,
        ContractCheck,
        DriftComparison,
        Models,
        ModelDetail,
        SignedModel,
        Runs,
        RunDetail,
        Datasets,
        DatasetDetail,
        PredictionStats,
        InferredContract,
        ContractDiff,
        PrometheusRules,
        GrafanaDashboard,
        Users,
        Tokens,
        Webhooks,
        CiWorkflow,
        CiSummary,
        SmokeResult,
        ContractTestResult,
        RenderResult,
        EnvironmentCheck,
        ArtifactList,
        WatchPass,
    ):
        assert getattr(keel, kind.__name__) is kind
        assert kind.__name__ in keel.__all__
    # The verbs import their services when called: `import keel` stays quick.
    heavy = ["numpy", "pandas", "pyarrow", "sklearn", "scipy", "sqlalchemy"]
    code = f"import sys, keel; print([m for m in {heavy!r} if m in sys.modules])"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


def test_release_verbs_print_their_results(
    keel: Keel, flights: Path, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_spec(flights, NO_APPROVALS)
    trained = keel("-C", flights, "train", "--as-of", AS_OF.isoformat(), "--json")
    assert trained.code == 0, trained.err
    new = _same(trained, calls, "train", TrainResult).registered.version
    assert new > 1

    promoted = keel("-C", flights, "promote", f"{MODEL}@1", "--to", "production", "--json")
    assert promoted.code == 0, promoted.err
    assert _same(promoted, calls, "promote", PromotionResult).outcome == "promoted"
    moved = keel("-C", flights, "promote", f"{MODEL}@{new}", "--to", "production", "--json")
    assert _same(moved, calls, "promote", PromotionResult).holder == 1

    back = keel("-C", flights, "rollback", MODEL, "--reason", "slower", "--json")
    assert back.code == 0, back.err
    rolled = _same(back, calls, "rollback", RollbackResult)
    assert (rolled.from_version, rolled.to_version) == (new, 1)

    write_spec(flights, {"approvals": {"required": 1}})
    asked = keel("-C", flights, "promote", f"{MODEL}@{new}", "--to", "production", "--json")
    assert asked.code == 8, asked.err
    request = _same(asked, calls, "promote", PromotionResult).request
    monkeypatch.setenv("KEEL_USER", "ben")
    rejected = keel("-C", flights, "reject", request.id, "--json")
    assert _same(rejected, calls, "reject", DecisionResult).outcome == "rejected"

    monkeypatch.setenv("KEEL_USER", "ana")
    again = keel("-C", flights, "promote", f"{MODEL}@{new}", "--to", "production", "--json")
    request = _same(again, calls, "promote", PromotionResult).request
    monkeypatch.setenv("KEEL_USER", "ben")
    approved = keel("-C", flights, "approve", request.id, "--json")
    assert approved.code == 0, approved.err
    assert _same(approved, calls, "approve", DecisionResult).outcome == "approved"
    with _open(flights) as project:
        assert project.metadata.releases.holder(MODEL, "production") == new
        decided = project.metadata.audit.events(kinds=["release.approved"])[-1]
        assert decided.actor == "ben"

    log = keel("-C", flights, "audit-log", "--limit", "3", "--json")
    events = _same(log, calls, "audit", AuditEvents).events
    assert [e.kind for e in events][-1] == "alias.moved"
    verified = keel("-C", flights, "audit-log", "verify", "--json")
    assert verified.code == 0, verified.err
    assert _same(verified, calls, "audit_verify", AuditVerification).ok


def test_the_python_api_acts_as_the_user_it_is_given(flights: Path) -> None:
    write_spec(flights, {"approvals": {"required": 1}})
    with _open(flights) as project:
        asked = project.promote(f"{MODEL}@1", "production", reason="weekly")
        assert asked.outcome == "pending" and asked.request is not None
        assert asked.request.requested_by == "ana"  # None: the project's user
        with pytest.raises(keel.PermissionDenied) as own:
            project.approve(asked.request.id)
        assert "separation of duties" in own.value.message
        approved = project.approve(asked.request.id, actor="ben", comment="ok")
        assert approved.outcome == "approved"
        token_user = keel.Actor("cy", frozenset({"approver"}), via="token")
        again = project.promote(f"{MODEL}@1", "staging", actor=token_user)
        assert again.outcome in ("promoted", "pending")
        events = project.audit(kinds=["release.approved", "release.requested"]).events
        assert [(e.kind, e.actor) for e in events][:2] == [
            ("release.requested", "ana"),
            ("release.approved", "ben"),
        ]


def test_serving_and_monitoring_verbs_print_their_results(
    keel: Keel, flights: Path, calls: Calls
) -> None:
    write_spec(flights, NO_APPROVALS)
    with _open(flights) as project:
        assert project.promote(f"{MODEL}@1", "production").outcome == "promoted"
    rows = pq.read_table(flights / "raw.parquet").slice(0, 300)
    pq.write_table(rows, flights / "in.parquet")

    scored = keel(
        "-C", flights, "predict-batch", flights / "in.parquet", flights / "out.parquet",
        "--model", f"{MODEL}@production", "--json",
    )  # fmt: skip
    assert scored.code == 0, scored.err
    batch = _same(scored, calls, "predict_batch", BatchResult)
    assert batch.rows == 300 and batch.version == 1

    explained = keel("-C", flights, "explain", batch.first_id, "--json")
    assert explained.code == 0, explained.err
    explanation = _same(explained, calls, "explain", Explanation)
    assert explanation.id == batch.first_id and explanation.model["version"] == 1

    out = pq.read_table(flights / "out.parquet")
    late = out["late"].cast(pa.int8())
    labels = pa.table({"prediction_id": out["prediction_id"], "label": late})
    pcsv.write_csv(labels.slice(0, 200), flights / "labels.csv")
    recorded = keel("-C", flights, "feedback", flights / "labels.csv", "--json")
    assert recorded.code == 0, recorded.err
    report = _same(recorded, calls, "feedback", FeedbackReport)
    assert report.feedback.receipt.rows == 200 and report.performance

    monitored = keel("-C", flights, "monitor", "--dry-run", "--json")
    assert monitored.code == 0, monitored.err
    windows = _same(monitored, calls, "monitor", MonitorReport).windows
    assert sum(w.rows for w in windows) == 300

    checked = keel("-C", flights, "canary", "check", "--json")
    assert _same(checked, calls, "canary_check", CanaryOutcome).action == "none"

    loop = keel("-C", flights, "retrain", "--if-triggered", "--json")
    assert loop.code == 0, loop.err
    assert _same(loop, calls, "retrain", RetrainOutcome).decision == "not-triggered"


def test_reproduce_prints_its_report(keel: Keel, release_project: Path, calls: Calls) -> None:
    rebuilt = keel("-C", release_project, "reproduce", f"{MODEL}@1", "--json")
    report = _same(rebuilt, calls, "reproduce", ReproduceReport)
    assert report.model == f"{MODEL}@1" and report.metrics
    assert rebuilt.code == (0 if report.metrics_match else 1)


def test_bad_input_names_the_field_and_changes_nothing(flights: Path) -> None:
    with _open(flights) as project:
        before = project.metadata.audit.head()
        with pytest.raises(keel.ConfigError) as bad_window:
            project.monitor(window="soon", record=False)
        assert ("--window", "a duration such as 1h or 1d, or a number of predictions") in (
            bad_window.value.problems
        )
        with pytest.raises(keel.ConfigError) as bad_by:
            project.monitor(by="tomorrow")
        assert bad_by.value.problems == [("by", "one of prediction, event")]
        with pytest.raises(keel.ConfigError):
            project.predict_batch(flights / "raw.parquet", flights / "out.parquet", "bad name@1")
        assert not (flights / "out.parquet").exists()
        assert project.metadata.audit.head() == before


def test_reading_verbs_and_resolving_an_alert_print_their_results(
    keel: Keel, flights: Path, calls: Calls
) -> None:
    write_spec(flights, {"approvals": {"required": 1}})
    with _open(flights) as project:
        asked = project.promote(f"{MODEL}@1", "production", reason="weekly")
        assert asked.request is not None
    listed = keel("-C", flights, "requests", "list", "--json")
    assert listed.code == 0, listed.err
    found = _same(listed, calls, "requests", ReleaseRequests).requests
    assert [r.id for r in found] == [asked.request.id]
    every = keel("-C", flights, "requests", "list", "--status", "all", "--model", MODEL, "--json")
    assert asked.request.id in [
        r.id for r in _same(every, calls, "requests", ReleaseRequests).requests
    ]
    shown = keel("-C", flights, "requests", "show", asked.request.id[:8], "--json")
    assert shown.code == 0, shown.err
    detail = _same(shown, calls, "request", ReleaseRequestDetail)
    assert detail.request.id == asked.request.id
    assert [g.gate for g in detail.gates] == [g.gate for g in asked.gates]
    missing = keel("-C", flights, "requests", "show", "ffffffff", "--json")
    assert missing.code != 0 and "request" not in calls

    status = keel("-C", flights, "canary", "status", "--json")
    assert status.code == 0, status.err
    nothing = _same(status, calls, "canary_status", CanaryStatus)
    assert nothing.analysis is None and status.json()["canary"] is None
    write_spec(flights, NO_APPROVALS)
    with _open(flights) as project:
        assert project.promote(f"{MODEL}@1", "canary").outcome == "promoted"
    status = keel("-C", flights, "canary", "status", "--json")
    assert status.code == 0, status.err
    watched = _same(status, calls, "canary_status", CanaryStatus)
    assert watched.analysis is not None and watched.analysis.canary == 1

    with _open(flights) as project:
        scored = project.predict_batch(
            flights / "raw.parquet", flights / "out.parquet", f"{MODEL}@canary"
        )
    out = pq.read_table(flights / "out.parquet").slice(0, 50)
    labels = pa.table({"prediction_id": out["prediction_id"], "label": out["late"].cast(pa.int8())})
    pcsv.write_csv(labels, flights / "labels.csv")
    assert keel("-C", flights, "feedback", flights / "labels.csv", "--json").code == 0
    calls.pop("feedback")
    history = keel("-C", flights, "feedback", "--history", scored.first_id.upper(), "--json")
    assert history.code == 0, history.err
    revisions = _same(history, calls, "label_history", LabelHistory)
    assert revisions.prediction_id == scored.first_id and len(revisions.labels) == 1
    table = keel("-C", flights, "feedback", "--json")
    assert table.code == 0, table.err
    measured = _same(table, calls, "performance", PerformanceReport)
    assert measured.labels == 50 and sum(w.labelled for w in measured.performance) == 50
    backwards = keel(
        "-C", flights, "feedback", "--since", "2030-01-02", "--until", "2030-01-01", "--json"
    )
    assert backwards.code == 2 and "--since" in backwards.json()["error"]["message"]

    with _open(flights) as project:
        alert, _ = project.metadata.monitoring.raise_alert(
            AlertDraft(
                model=MODEL, rule="feature-drift", signal="drift", subject="inputs.distance",
                severity="warning", message="distance drifted", owner="dana", version=1,
                value=0.3, threshold=0.1, evidence={},
            ),
            at=datetime.now(UTC),
            actor="keel-monitor",
        )  # fmt: skip
        seq, _hash = project.metadata.audit.head()
    listed = keel("-C", flights, "alerts", "list", "--json")
    assert listed.code == 0, listed.err
    assert [a.id for a in _same(listed, calls, "alerts", Alerts).alerts] == [alert.id]
    shown = keel("-C", flights, "alerts", "show", alert.id, "--json")
    assert _same(shown, calls, "alert", AlertDetail).alert.message == "distance drifted"
    resolved = keel("-C", flights, "alerts", "resolve", alert.id, "--reason", "fixed", "--json")
    assert resolved.code == 0, resolved.err
    closed = _same(resolved, calls, "resolve_alert", ResolvedAlert).alert
    assert closed.id == alert.id and not closed.is_open
    with _open(flights) as project:
        [event] = project.metadata.audit.events(after=seq)
        assert (event.kind, event.actor, event.reason) == ("alert.resolved", "ana", "fixed")
        assert project.alerts().alerts == []
        assert [a.id for a in project.alerts(state=None, model=MODEL).alerts] == [alert.id]
        with pytest.raises(ConfigError) as bad:
            project.alerts(state="closed")
        assert [field for field, _ in bad.value.problems] == ["state"]


def test_users_and_tokens_verbs_print_their_results(
    keel: Keel, flights: Path, calls: Calls
) -> None:
    added = keel("-C", flights, "users", "add", "dee", "--role", "approver", "--json")
    assert added.code == 0, added.err
    assert _same(added, calls, "add_user", UserChange).change == "added"
    again = keel("-C", flights, "users", "add", "dee", "--role", "approver", "--json")
    assert _same(again, calls, "add_user", UserChange).change == "unchanged"
    changed = keel(
        "-C", flights, "users", "add", "dee", "--role", "approver", "--role", "deployer", "--json"
    )
    assert _same(changed, calls, "add_user", UserChange).user["roles"] == ["approver", "deployer"]

    created = keel("-C", flights, "tokens", "create", "dee", "--label", "ci", "--json")
    assert created.code == 0, created.err
    token = _same(created, calls, "create_token", NewToken)
    assert token.value.startswith("keel_") and token.token["label"] == "ci"
    kept = keel("-C", flights, "tokens", "create", "dee", "--ttl", "never", "--json")
    assert _same(kept, calls, "create_token", NewToken).token["expires_at"] is None
    revoked = keel("-C", flights, "tokens", "revoke", token.token["id"], "--json")
    assert revoked.code == 0, revoked.err
    assert _same(revoked, calls, "revoke_token", RevokedToken).token["state"] == "revoked"

    disabled = keel("-C", flights, "users", "disable", "dee", "--json")
    assert disabled.code == 0, disabled.err
    user = _same(disabled, calls, "disable_user", DisabledUser)
    assert user.user["state"] == "disabled" and len(user.tokens_revoked) == 1

    with _open(flights) as project:
        seq, _hash = project.metadata.audit.head()
        with pytest.raises(ConfigError):
            project.add_user("bad name", roles=["approver"])
        with pytest.raises(ConfigError):
            project.add_user("eve", roles=["emperor"])  # type: ignore[list-item]
        assert project.metadata.audit.head()[0] == seq
        assert project.add_user("eve", roles=["approver"], actor="root").change == "added"
        [event] = project.metadata.audit.events(after=seq)
        assert event.actor == "root"


def test_webhook_verbs_print_their_results(
    keel: Keel, flights: Path, calls: Calls, receiver: Receiver
) -> None:
    added = keel("-C", flights, "webhooks", "add", receiver.url, "--event", "user.added", "--json")
    assert added.code == 0, added.err
    hook = _same(added, calls, "add_webhook", NewWebhook)
    assert hook.webhook.events == ("user.added",) and hook.secret
    receiver.secret = hook.secret
    with _open(flights) as project:
        project.add_user("dee", roles=["approver"])
    delivered = keel("-C", flights, "webhooks", "deliver", "--json")
    assert delivered.code == 0, delivered.err
    report = _same(delivered, calls, "deliver_webhooks", DeliveryReport)
    assert report.ok and [item.delivered for item in report.webhooks] == [1]
    assert [r.json()["kind"] for r in receiver.received] == ["user.added"]
    assert all(r.signature_ok for r in receiver.received)

    removed = keel("-C", flights, "webhooks", "remove", hook.webhook.id, "--json")
    assert removed.code == 0, removed.err
    assert _same(removed, calls, "remove_webhook", RemovedWebhook).removed == hook.webhook.id
    with _open(flights) as project:
        assert project.metadata.webhooks.list() == []
        with pytest.raises(ConfigError):
            project.add_webhook("ftp://example.com/hook")
        assert project.metadata.webhooks.list() == []


def test_dataset_diff_prints_its_result(keel: Keel, flights: Path, calls: Calls) -> None:
    rows = pq.read_table(flights / "raw.parquet")
    pq.write_table(
        rows.slice(0, 1000).drop_columns([rows.column_names[-1]]), flights / "less.parquet"
    )
    with _open(flights) as project:
        first = project.metadata.datasets.resolve("latest")
        second = project.snapshot(str(flights / "less.parquet")).version
    compared = keel("-C", flights, "data", "diff", first.id.short, "latest", "--json")
    assert compared.code == 0, compared.err
    diff = _same(compared, calls, "dataset_diff", DatasetComparison).diff
    assert (diff.old.id, diff.new.id) == (first.id, second.id)
    assert diff.rows_delta == 1000 - first.rows and [n for n, _ in diff.removed] == [
        rows.column_names[-1]
    ]
    same = keel("-C", flights, "data", "diff", "latest", "latest", "--json")
    assert _same(same, calls, "dataset_diff", DatasetComparison).diff.identical


def test_compact_predictions_prints_its_report(keel: Keel, flights: Path, calls: Calls) -> None:
    write_spec(flights, NO_APPROVALS)
    with _open(flights) as project:
        assert project.promote(f"{MODEL}@1", "production").outcome == "promoted"
        scored = project.predict_batch(
            flights / "raw.parquet", flights / "out.parquet", f"{MODEL}@production"
        )
    compacted = keel("-C", flights, "predictions", "compact", "--older-than", "1ms", "--json")
    assert compacted.code == 0, compacted.err
    report = _same(compacted, calls, "compact_predictions", CompactionReport)
    assert report.rows == scored.rows and report.segments
    again = keel("-C", flights, "predictions", "compact", "--older-than", "1ms", "--json")
    assert _same(again, calls, "compact_predictions", CompactionReport).rows == 0
    with _open(flights) as project:  # compacted rows stay readable
        assert project.explain(scored.first_id).id == scored.first_id


def test_owners_prints_its_result(keel: Keel, flights: Path, calls: Calls) -> None:
    owned = keel("-C", flights, "owners", "--json")
    ownership = _same(owned, calls, "owners", Ownership)
    assert owned.code == (0 if ownership.ok else 1)
    assert owned.json()["ok"] is ownership.ok
    assert ownership.stages and all(s["covers"] for s in ownership.stages)
    assert ownership.unowned_rules == owned.json()["unowned_rules"]


def test_lineage_prints_its_result(keel: Keel, flights: Path, calls: Calls) -> None:
    traced = keel("-C", flights, "lineage", f"{MODEL}@1", "--json")
    assert traced.code == 0, traced.err
    chain = _same(traced, calls, "lineage", ModelLineage)
    assert chain.model["version"] == 1 and chain.run["id"] == chain.model["run_id"]
    assert chain.dataset is not None and chain.environment is not None
    with _open(flights) as project, pytest.raises(ConfigError):
        project.lineage("no version")


def test_skew_prints_its_result_and_verdict(keel: Keel, flights: Path, calls: Calls) -> None:
    data = {**BASE["data"], "entity_key": ["carrier", "flight", "time_hour"]}  # type: ignore[dict-item]
    write_spec(flights, data=data)
    rows = pq.read_table(flights / "raw.parquet").slice(0, 200)  # training rows
    broken = rows.slice(100).set_column(
        rows.column_names.index("temp"), "temp", pc.add(rows.slice(100)["temp"], 10.0)
    )
    pq.write_table(rows.slice(0, 100), flights / "exact.parquet")
    pq.write_table(broken, flights / "broken.parquet")
    with _open(flights) as project:
        for name in ("exact", "broken"):
            project.predict_batch(
                flights / f"{name}.parquet", flights / f"{name}-out.parquet", f"{MODEL}@1"
            )

    failed = keel("-C", flights, "skew", "--model", MODEL, "--since", "1h", "--json")
    assert failed.code == 1, failed.out + failed.err
    check = _same(failed, calls, "skew", SkewCheck)
    assert failed.json()["ok"] is check.ok is False
    assert "temp" in [f.feature for f in check.above] and check.report.row.compared == 200

    passed = keel("-C", flights, "skew", "--model", f"{MODEL}@1", "--since", "1h",
                  "--max-mismatch", "0.9", "--json")  # fmt: skip
    assert passed.code == 0, passed.out + passed.err
    assert _same(passed, calls, "skew", SkewCheck).ok

    with _open(flights) as project:
        hour = timedelta(hours=1)
        assert project.skew(f"{MODEL}@1", since=hour, max_mismatch=0.9).ok
        with pytest.raises(ConfigError) as conflict:
            project.skew(MODEL, since=hour, start=datetime.now(UTC) - hour)
        assert [field for field, _ in conflict.value.problems] == ["since"]
        with pytest.raises(ConfigError) as twice:
            project.skew(f"{MODEL}@1", version=1)
        assert [field for field, _ in twice.value.problems] == ["version"]
        with pytest.raises(NotFound, match="could be compared"):
            project.skew(MODEL, since=hour, entity_key=["carrier"])  # shared keys


def test_scorecard_prints_its_result_and_verdict(keel: Keel, flights: Path, calls: Calls) -> None:
    scored = keel("-C", flights, "audit", "--json")
    assert scored.code == 0, scored.err
    found = _same(scored, calls, "scorecard", MaturityScorecard)
    assert found.ok and found.shortfall == [] and found.card.items
    assert scored.json()["level"] == found.card.level < 4

    below = keel("-C", flights, "audit", "--min-level", "4", "--min-score", "1000", "--json")
    assert below.code == 1, below.out + below.err
    missed = _same(below, calls, "scorecard", MaturityScorecard)
    assert below.json()["ok"] is missed.ok is False
    assert [line.split()[1] for line in missed.shortfall] == ["--min-level", "--min-score"]

    with _open(flights) as project:
        assert project.scorecard(min_level=found.card.level).ok
        assert not project.scorecard(min_score=found.card.score + 1).ok
        with pytest.raises(ConfigError) as bad:
            project.scorecard(min_level=5, min_score=-1)
        assert [field for field, _ in bad.value.problems] == ["min_level", "min_score"]


def test_contract_check_prints_its_result_and_verdict(
    keel: Keel, flights: Path, calls: Calls, tmp_path: Path
) -> None:
    now = AS_OF.isoformat()
    checked = keel("-C", flights, "contract", "check", "latest", "--now", now, "--json",
                   "--junit", tmp_path / "junit.xml")  # fmt: skip
    assert checked.code == 0, checked.out + checked.err
    passed = _same(checked, calls, "contract_check", ContractCheck)
    assert passed.ok and passed.source.startswith("dataset ")
    assert passed.contract == flights / "contracts" / "raw.yaml"
    assert (tmp_path / "junit.xml").read_text().startswith("<?xml")

    rows = pq.read_table(flights / "raw.parquet").slice(0, 500)
    pq.write_table(rows.drop_columns(["carrier"]), flights / "broken.parquet")
    broken = keel("-C", flights, "contract", "check", flights / "broken.parquet", "--now", now,
                  "--json")  # fmt: skip
    assert broken.code == 1, broken.out + broken.err
    failed = _same(broken, calls, "contract_check", ContractCheck)
    assert broken.json()["ok"] is failed.ok is False and failed.report.errors

    with _open(flights) as project:
        assert project.contract_check("latest", now=AS_OF).ok
    # Loose files need no project: the verb runs on its own, with a contract named.
    from keel.verbs import contract_check

    alone = contract_check(
        None, str(flights / "broken.parquet"), contract=flights / "contracts" / "raw.yaml"
    )
    assert not alone.ok
    with pytest.raises(ConfigError, match="no contract"):
        contract_check(None, str(flights / "broken.parquet"))


def test_drift_prints_its_result_and_verdict(keel: Keel, flights: Path, tmp_path: Path) -> None:
    rows = pq.read_table(flights / "raw.parquet")
    pq.write_table(rows.slice(0, 3000), tmp_path / "early.parquet")
    pq.write_table(rows.slice(rows.num_rows - 3000), tmp_path / "late.parquet")
    early, late = str(tmp_path / "early.parquet"), str(tmp_path / "late.parquet")

    # `keel drift` reads files only and opens no project: it runs the verb on its own.
    moved = keel("drift", early, late, "--json")
    assert moved.code == 1, moved.out + moved.err
    with _open(flights) as project:
        compared = project.drift(early, late)
    assert isinstance(compared, DriftComparison)
    assert _document(moved.json()) == _document(compared.to_dict())
    assert moved.json()["ok"] is compared.ok is False and "temp" in compared.drifted

    same = keel("drift", early, early, "--test", "psi", "--columns", "temp", "--json")
    assert same.code == 0, same.out + same.err
    alone = keel_verbs.drift(None, early, early, test="psi", columns=["temp"])
    assert alone.ok and _document(same.json()) == _document(alone.to_dict())

    for options, field in (
        ({"threshold": 0.1}, "threshold"),
        ({"test": "ks", "threshold": 2.0}, "threshold"),
        ({"columns": ["nope"]}, "columns"),
        ({"test": "t-test"}, "test"),
    ):
        with pytest.raises(ConfigError) as bad:
            keel_verbs.drift(None, early, late, **options)  # type: ignore[arg-type]
        assert [name for name, _ in bad.value.problems] == [field]
    refused = keel("drift", early, late, "--threshold", "0.1")
    assert refused.code == 2 and "--threshold" in refused.err
