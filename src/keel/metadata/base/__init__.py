"""The metadata store port: one interface, split by aggregate, the same on every backend.

`keel.metadata.sql` implements it for SQLite (embedded default) and PostgreSQL. The schema
is created and upgraded only by Alembic migrations; later capabilities add aggregates
(datasets, runs, models, events) as attributes beside `artifacts`, each with a migration.

One module per aggregate, as in `keel.metadata.sql` (artifacts, datasets, runs, models,
audit, releases, identity, webhooks, predictions, monitoring, feedback), and `store` for
`MetadataStore`, which holds one of each; every name is importable from here.
"""

from keel.metadata.base.artifacts import ArtifactRecord, ArtifactRecords
from keel.metadata.base.audit import AuditLog
from keel.metadata.base.datasets import DatasetVersions
from keel.metadata.base.feedback import (
    Feedback,
    FeedbackReceipt,
    FeedbackRow,
    Label,
    Labelled,
    LabelRecord,
    LoggedKey,
)
from keel.metadata.base.identity import Identities
from keel.metadata.base.models import ModelRegistry
from keel.metadata.base.monitoring import Monitoring
from keel.metadata.base.predictions import Predictions
from keel.metadata.base.releases import Releases
from keel.metadata.base.runs import Runs
from keel.metadata.base.store import MetadataStore, SchemaRevision
from keel.metadata.base.webhooks import Webhook, Webhooks

__all__ = [
    "ArtifactRecord",
    "ArtifactRecords",
    "AuditLog",
    "DatasetVersions",
    "Feedback",
    "FeedbackReceipt",
    "FeedbackRow",
    "Identities",
    "Label",
    "LabelRecord",
    "Labelled",
    "LoggedKey",
    "MetadataStore",
    "ModelRegistry",
    "Monitoring",
    "Predictions",
    "Releases",
    "Runs",
    "SchemaRevision",
    "Webhook",
    "Webhooks",
]
