"""keel: a release system for machine-learning models.

import keel
with keel.Project.open("path/to/project") as project:
    print(project.status().ok)
"""

import typing as _typing

from keel.domain.digest import Digest
from keel.domain.identity import Actor
from keel.errors import (
    ApprovalRequired,
    ConfigError,
    Conflict,
    ContractViolation,
    DataError,
    DependencyMissing,
    GateFailed,
    IntegrityError,
    KeelError,
    NotFound,
    PermissionDenied,
    StoreError,
    UserCodeError,
)
from keel.project import Project, ProjectStatus
from keel.settings import Settings
from keel.spec import ProjectSpec, load_spec
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
from keel.version import __version__

if _typing.TYPE_CHECKING:
    from keel.ci.contract_test import ContractTestResult
    from keel.ci.smoke import SmokeResult
    from keel.deploy.envcheck import EnvironmentCheck
    from keel.deploy.render import RenderResult
    from keel.events.webhooks import DeliveryReport
    from keel.monitoring.model import MonitorReport
    from keel.pipeline.reproduce import ReproduceReport
    from keel.pipeline.train import TrainResult
    from keel.predlog.read import CompactionReport
    from keel.release.service import DecisionResult, PromotionResult, RollbackResult
    from keel.retraining.canary import CanaryOutcome
    from keel.retraining.service import RetrainOutcome
    from keel.serving.batch import BatchResult


__all__ = [
    "Actor",
    "AlertDetail",
    "Alerts",
    "ApprovalRequired",
    "ArtifactList",
    "AuditEvents",
    "AuditVerification",
    "BatchResult",
    "CanaryOutcome",
    "CanaryStatus",
    "CiSummary",
    "CiWorkflow",
    "CompactionReport",
    "ConfigError",
    "Conflict",
    "ContractCheck",
    "ContractDiff",
    "ContractTestResult",
    "ContractViolation",
    "DataError",
    "DatasetComparison",
    "DatasetDetail",
    "Datasets",
    "DecisionResult",
    "DeliveryReport",
    "DependencyMissing",
    "Digest",
    "DisabledUser",
    "DriftComparison",
    "EnvironmentCheck",
    "Explanation",
    "FeedbackReport",
    "GateFailed",
    "GrafanaDashboard",
    "InferredContract",
    "IntegrityError",
    "KeelError",
    "LabelHistory",
    "MaturityScorecard",
    "ModelDetail",
    "ModelLineage",
    "Models",
    "MonitorReport",
    "NewToken",
    "NewWebhook",
    "NotFound",
    "Ownership",
    "PerformanceReport",
    "PermissionDenied",
    "PredictionStats",
    "Project",
    "ProjectSpec",
    "ProjectStatus",
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
    "RunDetail",
    "Runs",
    "Settings",
    "SignedModel",
    "SkewCheck",
    "SmokeResult",
    "StoreError",
    "Tokens",
    "TrainResult",
    "UserChange",
    "UserCodeError",
    "Users",
    "WatchPass",
    "Webhooks",
    "__version__",
    "load_spec",
]

#: The verbs' result types that live with their services, loaded on first use through
#: `keel.verbs` (which knows where each lives): their modules pull in numpy, pyarrow or the
#: release machinery, which `import keel` must not.
_FROM_VERBS = frozenset(
    {
        "BatchResult",
        "CanaryOutcome",
        "CompactionReport",
        "ContractTestResult",
        "DecisionResult",
        "DeliveryReport",
        "EnvironmentCheck",
        "MonitorReport",
        "PromotionResult",
        "RenderResult",
        "ReproduceReport",
        "RetrainOutcome",
        "RollbackResult",
        "SmokeResult",
        "TrainResult",
    }
)


def __getattr__(name: str) -> _typing.Any:
    if name not in _FROM_VERBS:
        raise AttributeError(f"module 'keel' has no attribute {name!r}")
    import keel.verbs

    value = getattr(keel.verbs, name)
    globals()[name] = value
    return value
