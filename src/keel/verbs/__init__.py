"""keel's verbs: what a user does to a project, one module per verb.

Each verb is a function whose first parameter is the project (a `keel.workspace.Workspace`)
and which returns a typed result with `to_dict()`, the document `--json` prints. `keel.Project`
carries them as methods (`project.train()`), the CLI and the HTTP API call them, so all three
do the same with the same checks (docs/python-api.md).

This package sits below the interfaces (`keel.project`, `keel.cli`, `keel.web`, the server)
and above the services it calls; services are imported inside the verbs, so that `import
keel` stays fast.

Every verb that acts takes one `actor`: an `Actor`, a user name (acting with that user's
recorded roles), or None for the project's user (KEEL_USER, else the OS user).
"""

from typing import TYPE_CHECKING, Any

from keel.verbs._actor import ActorLike
from keel.verbs.alerts import AlertDetail, Alerts, alert, alerts
from keel.verbs.approve import approve
from keel.verbs.audit import AuditEvents, AuditVerification, audit, audit_verify
from keel.verbs.canary_check import canary_check
from keel.verbs.canary_status import CanaryStatus, canary_status
from keel.verbs.ci_summary import CiSummary, ci_summary
from keel.verbs.ci_workflow import CiWorkflow, ci_workflow
from keel.verbs.compact_predictions import compact_predictions
from keel.verbs.contract_check import ContractCheck, contract_check
from keel.verbs.contract_diff import ContractDiff, contract_diff
from keel.verbs.contract_infer import InferredContract, contract_infer
from keel.verbs.contract_test import contract_test
from keel.verbs.dataset_diff import DatasetComparison, dataset_diff
from keel.verbs.datasets import DatasetDetail, Datasets, dataset, datasets
from keel.verbs.deploy_render import deploy_render
from keel.verbs.drift import DriftComparison, drift
from keel.verbs.env_check import env_check
from keel.verbs.explain import Explanation, explain
from keel.verbs.exports import (
    GrafanaDashboard,
    PrometheusRules,
    grafana_dashboard,
    prometheus_rules,
)
from keel.verbs.feedback import FeedbackReport, feedback
from keel.verbs.label_history import LabelHistory, label_history
from keel.verbs.lineage import ModelLineage, lineage
from keel.verbs.list_artifacts import ArtifactList, list_artifacts
from keel.verbs.models import ModelDetail, Models, SignedModel, model, models, sign_model
from keel.verbs.monitor import monitor
from keel.verbs.owners import Ownership, owners
from keel.verbs.performance import PerformanceReport, performance
from keel.verbs.predict_batch import predict_batch
from keel.verbs.prediction_stats import PredictionStats, prediction_stats
from keel.verbs.promote import promote
from keel.verbs.reject import reject
from keel.verbs.reproduce import reproduce
from keel.verbs.requests import ReleaseRequestDetail, ReleaseRequests, request, requests
from keel.verbs.resolve_alert import ResolvedAlert, resolve_alert
from keel.verbs.retrain import retrain
from keel.verbs.rollback import rollback
from keel.verbs.runs import RunDetail, Runs, run, runs
from keel.verbs.scorecard import MaturityScorecard, scorecard
from keel.verbs.skew import SkewCheck, skew
from keel.verbs.smoke_test import smoke_test
from keel.verbs.snapshot import snapshot
from keel.verbs.tokens import NewToken, RevokedToken, Tokens, create_token, revoke_token, tokens
from keel.verbs.train import train
from keel.verbs.users import DisabledUser, UserChange, Users, add_user, disable_user, users
from keel.verbs.watch_pass import WatchPass, watch_pass
from keel.verbs.webhooks import (
    NewWebhook,
    RemovedWebhook,
    Webhooks,
    add_webhook,
    deliver_webhooks,
    remove_webhook,
    webhooks,
)

if TYPE_CHECKING:
    from keel.ci.contract_test import ContractTestResult
    from keel.ci.smoke import SmokeResult
    from keel.data.snapshot import SnapshotResult
    from keel.deploy.envcheck import EnvironmentCheck
    from keel.deploy.render import RenderResult
    from keel.events.webhooks import DeliveryReport
    from keel.maturity import Scorecard
    from keel.metadata.base import LabelRecord, Webhook
    from keel.monitoring.feedback import FeedbackResult, WindowPerformance
    from keel.monitoring.model import MonitorReport
    from keel.monitoring.skew import RowSkewReport, SkewReport
    from keel.pipeline.reproduce import ReproduceReport
    from keel.pipeline.train import TrainResult
    from keel.predlog.read import CompactionReport
    from keel.release.service import DecisionResult, PromotionResult, RollbackResult
    from keel.retraining.canary import CanaryAnalysis, CanaryOutcome
    from keel.retraining.service import RetrainOutcome
    from keel.serving.batch import BatchResult

__all__ = [
    "ActorLike",
    "AlertDetail",
    "Alerts",
    "ArtifactList",
    "AuditEvents",
    "AuditVerification",
    "BatchResult",
    "CanaryAnalysis",
    "CanaryOutcome",
    "CanaryStatus",
    "CiSummary",
    "CiWorkflow",
    "CompactionReport",
    "ContractCheck",
    "ContractDiff",
    "ContractTestResult",
    "DatasetComparison",
    "DatasetDetail",
    "Datasets",
    "DecisionResult",
    "DeliveryReport",
    "DisabledUser",
    "DriftComparison",
    "EnvironmentCheck",
    "Explanation",
    "FeedbackReport",
    "FeedbackResult",
    "GrafanaDashboard",
    "InferredContract",
    "LabelHistory",
    "LabelRecord",
    "MaturityScorecard",
    "ModelDetail",
    "ModelLineage",
    "Models",
    "MonitorReport",
    "NewToken",
    "NewWebhook",
    "Ownership",
    "PerformanceReport",
    "PredictionStats",
    "PrometheusRules",
    "PromotionResult",
    "ReleaseRequestDetail",
    "ReleaseRequests",
    "RemovedWebhook",
    "RenderResult",
    "ReproduceReport",
    "ResolvedAlert",
    "RetrainOutcome",
    "RevokedToken",
    "RollbackResult",
    "RowSkewReport",
    "RunDetail",
    "Runs",
    "Scorecard",
    "SignedModel",
    "SkewCheck",
    "SkewReport",
    "SmokeResult",
    "SnapshotResult",
    "Tokens",
    "TrainResult",
    "UserChange",
    "Users",
    "WatchPass",
    "Webhook",
    "Webhooks",
    "WindowPerformance",
    "add_user",
    "add_webhook",
    "alert",
    "alerts",
    "approve",
    "audit",
    "audit_verify",
    "canary_check",
    "canary_status",
    "ci_summary",
    "ci_workflow",
    "compact_predictions",
    "contract_check",
    "contract_diff",
    "contract_infer",
    "contract_test",
    "create_token",
    "dataset",
    "dataset_diff",
    "datasets",
    "deliver_webhooks",
    "deploy_render",
    "disable_user",
    "drift",
    "env_check",
    "explain",
    "feedback",
    "grafana_dashboard",
    "label_history",
    "lineage",
    "list_artifacts",
    "model",
    "models",
    "monitor",
    "owners",
    "performance",
    "predict_batch",
    "prediction_stats",
    "prometheus_rules",
    "promote",
    "reject",
    "remove_webhook",
    "reproduce",
    "request",
    "requests",
    "resolve_alert",
    "retrain",
    "revoke_token",
    "rollback",
    "run",
    "runs",
    "scorecard",
    "sign_model",
    "skew",
    "smoke_test",
    "snapshot",
    "tokens",
    "train",
    "users",
    "watch_pass",
    "webhooks",
]

#: The result types of the verbs that live with their services, and the types the CLI
#: renders: importable from here, loaded on first use (their modules pull in numpy,
#: pyarrow or the release machinery, which `import keel` must not).
_LAZY = {
    "BatchResult": "keel.serving.batch",
    "CanaryAnalysis": "keel.retraining.canary",
    "CanaryOutcome": "keel.retraining.canary",
    "CompactionReport": "keel.predlog.read",
    "ContractTestResult": "keel.ci.contract_test",
    "DecisionResult": "keel.release.service",
    "DeliveryReport": "keel.events.webhooks",
    "EnvironmentCheck": "keel.deploy.envcheck",
    "FeedbackResult": "keel.monitoring.feedback",
    "LabelRecord": "keel.metadata.base",
    "MonitorReport": "keel.monitoring.model",
    "PromotionResult": "keel.release.service",
    "RenderResult": "keel.deploy.render",
    "ReproduceReport": "keel.pipeline.reproduce",
    "RetrainOutcome": "keel.retraining.service",
    "RollbackResult": "keel.release.service",
    "RowSkewReport": "keel.monitoring.skew",
    "Scorecard": "keel.maturity",
    "SkewReport": "keel.monitoring.skew",
    "SmokeResult": "keel.ci.smoke",
    "SnapshotResult": "keel.data.snapshot",
    "TrainResult": "keel.pipeline.train",
    "Webhook": "keel.metadata.base",
    "WindowPerformance": "keel.monitoring.feedback",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'keel.verbs' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
