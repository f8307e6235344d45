"""The project spec, `keel.yaml`: its schema, loading, and errors that name the key path.

Every section is validated when present; unknown keys are refused (a typo must not be silently
ignored). Paths in the spec are relative to the folder holding keel.yaml. The document carries
`version: 1`, independent of Python module paths, so that old files stay readable.

One module per section of the document (`sources`, `training`, `release`, `monitoring`,
`retraining`, `serving`, `engine`), `document` for the whole of it and the rules spanning
sections, and `loading` for reading the YAML; every name is importable from `keel.spec` itself.
"""

from keel.domain.metric import KNOWN_METRICS
from keel.spec._base import SPEC_FILENAME, SPEC_VERSION, Duration, EntryPoint
from keel.spec.document import Owners, ProjectSpec
from keel.spec.engine import SPARK_MASTER_FORMS, EngineSpec, check_spark_master
from keel.spec.loading import load_spec, parse_spec
from keel.spec.monitoring import (
    AlertRule,
    AlertSignal,
    DriftSpec,
    FeedbackSpec,
    FreshnessSpec,
    MonitoringSpec,
)
from keel.spec.release import (
    DEFAULT_ALIASES,
    ApprovalPolicy,
    BeatsChampionGate,
    ContractPassedGate,
    Gate,
    InferenceContractGate,
    MetricThresholdGate,
    ReleaseSpec,
)
from keel.spec.retraining import (
    CanaryPolicy,
    CanaryRollback,
    PerformanceTrigger,
    RetrainingSpec,
    RetrainingTriggers,
)
from keel.spec.serving import BatchingSpec, PredictionLogSpec, ServingSpec
from keel.spec.sources import DataSpec, SqlSource, StorageSpec
from keel.spec.training import FeaturesSpec, MetricSpec, SplitSpec, TrainingSpec

__all__ = [
    "DEFAULT_ALIASES",
    "KNOWN_METRICS",
    "SPARK_MASTER_FORMS",
    "SPEC_FILENAME",
    "SPEC_VERSION",
    "AlertRule",
    "AlertSignal",
    "ApprovalPolicy",
    "BatchingSpec",
    "BeatsChampionGate",
    "CanaryPolicy",
    "CanaryRollback",
    "ContractPassedGate",
    "DataSpec",
    "DriftSpec",
    "Duration",
    "EngineSpec",
    "EntryPoint",
    "FeaturesSpec",
    "FeedbackSpec",
    "FreshnessSpec",
    "Gate",
    "InferenceContractGate",
    "MetricSpec",
    "MetricThresholdGate",
    "MonitoringSpec",
    "Owners",
    "PerformanceTrigger",
    "PredictionLogSpec",
    "ProjectSpec",
    "ReleaseSpec",
    "RetrainingSpec",
    "RetrainingTriggers",
    "ServingSpec",
    "SplitSpec",
    "SqlSource",
    "StorageSpec",
    "TrainingSpec",
    "check_spark_master",
    "load_spec",
    "parse_spec",
]
