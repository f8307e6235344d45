"""The metadata store on SQLAlchemy Core: SQLite by default, PostgreSQL at scale."""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter

from alembic.util import CommandError
from sqlalchemy import select

from keel.domain.health import StoreHealth
from keel.errors import StoreError
from keel.metadata.base import MetadataStore, SchemaRevision
from keel.metadata.sql.artifacts import SqlArtifactRecords
from keel.metadata.sql.audit import SqlAuditLog
from keel.metadata.sql.datasets import SqlDatasetVersions
from keel.metadata.sql.engine import (
    backend_of,
    create_metadata_engine,
    describe_target,
    read_transaction,
    redact_url,
    translate_errors,
)
from keel.metadata.sql.feedback import SqlFeedback
from keel.metadata.sql.identity import SqlIdentities
from keel.metadata.sql.migrations import current_revision, script_directory, upgrade_to_head
from keel.metadata.sql.models import SqlModelRegistry
from keel.metadata.sql.monitoring import SqlMonitoring
from keel.metadata.sql.predictions import SqlPredictions
from keel.metadata.sql.releases import SqlReleases
from keel.metadata.sql.runs import SqlRuns
from keel.metadata.sql.webhooks import SecretSealer, SqlWebhooks
from keel.version import __version__

__all__ = ["SqlMetadataStore", "open_metadata_store"]


class SqlMetadataStore(MetadataStore):
    """`MetadataStore` for a `sqlite:///path` or `postgresql://...` URL.

    Creating one does not connect: `revision()`, `health()` and the aggregates do, and
    report an unreachable database as `StoreError`. Most callers want
    `open_metadata_store`, which also brings the schema up to date.
    """

    def __init__(self, url: str, *, sealer: Callable[[], SecretSealer] | None = None) -> None:
        self._engine = create_metadata_engine(url)
        self.url = redact_url(url)
        self.backend = backend_of(self._engine.url)
        self.artifacts = SqlArtifactRecords(self._engine)
        self.datasets = SqlDatasetVersions(self._engine)
        self.runs = SqlRuns(self._engine)
        self.models = SqlModelRegistry(self._engine)
        self.webhooks = SqlWebhooks(self._engine, sealer=sealer)
        self.identities = SqlIdentities(self._engine)
        self.audit = SqlAuditLog(self._engine)
        self.releases = SqlReleases(self._engine)
        self.predictions = SqlPredictions(self._engine)
        self.feedback = SqlFeedback(self._engine)
        self.monitoring = SqlMonitoring(self._engine)
        scripts = script_directory()
        head = scripts.get_current_head()
        if head is None:  # only a broken installation ships no migrations
            raise StoreError("keel's schema migrations are missing from this installation")
        self._head = head
        self._known = frozenset(script.revision for script in scripts.walk_revisions())

    def revision(self) -> SchemaRevision:
        """The database's schema revision next to the newest one this keel knows."""
        with read_transaction(self._engine) as conn:
            current = current_revision(conn)
        return SchemaRevision(current=current, head=self._head)

    def upgrade(self) -> SchemaRevision:
        """Apply pending migrations (serialised across processes); returns the new revision.

        Idempotent. Refuses, with `StoreError`, a database a newer keel has migrated.
        """
        before = self.revision()
        self.check_known(before)
        if before.up_to_date:
            return before  # the common case needs no lock: nothing would change
        try:
            with translate_errors(self._engine.url):
                upgrade_to_head(self._engine)
        except CommandError as exc:
            # Most likely a newer keel migrated the database while we waited for the lock.
            self.check_known(self.revision())
            target = describe_target(self._engine.url)
            raise StoreError(f"migrating {target} failed: {exc}") from exc
        return self.revision()

    def check_known(self, revision: SchemaRevision) -> None:
        """`StoreError` if the database is at a revision this keel does not know."""
        if revision.current is not None and revision.current not in self._known:
            raise StoreError(
                f"{describe_target(self._engine.url)} is at schema revision "
                f"'{revision.current}', which keel {__version__} does not know "
                f"(its newest is '{revision.head}'): a newer keel has migrated it; "
                "upgrade keelml to use it",
                hint="upgrade keelml (pip install -U keelml) to use this database",
            )

    def health(self) -> StoreHealth:
        """Whether the database answers a round trip and is at this keel's schema revision.

        Never raises for an unreachable database: that is `ok=False` with the reason.
        """
        latency_ms = 0.0
        try:
            with read_transaction(self._engine) as conn:
                started = perf_counter()
                conn.execute(select(1)).one()
                latency_ms = (perf_counter() - started) * 1000
                revision = SchemaRevision(current=current_revision(conn), head=self._head)
        except StoreError as exc:
            return self._health(ok=False, detail=exc.message, latency_ms=latency_ms)
        if revision.up_to_date:
            detail = f"schema at revision {revision.current} (head)"
        elif revision.current is not None and revision.current not in self._known:
            detail = (
                f"schema at revision {revision.current}, unknown to keel {__version__} "
                f"(head {revision.head}): upgrade keelml"
            )
        else:
            detail = (
                f"schema at revision {revision.current or 'none (empty database)'}, "
                f"head is {revision.head}: open the store with upgrade to migrate it"
            )
        return self._health(ok=revision.up_to_date, detail=detail, latency_ms=latency_ms)

    def close(self) -> None:
        """Close every pooled connection; the store is unusable afterwards."""
        self._engine.dispose()

    def _health(self, *, ok: bool, detail: str, latency_ms: float) -> StoreHealth:
        return StoreHealth(
            kind="metadata",
            backend=self.backend,
            url=self.url,
            ok=ok,
            detail=detail,
            latency_ms=latency_ms,
        )


def open_metadata_store(
    url: str, *, upgrade: bool = True, sealer: Callable[[], SecretSealer] | None = None
) -> SqlMetadataStore:
    """Open the metadata store at `url`, migrating it to this keel's schema first.

    With `upgrade=False` the schema is left as it is (for read-only status reports).
    `sealer` encrypts webhook secrets at rest (without one they are stored as given).
    Either way a database migrated by a newer keel is refused with `StoreError`, and an
    unreachable one raises `StoreError` naming where it was looked for.
    """
    store = SqlMetadataStore(url, sealer=sealer)
    try:
        if upgrade:
            store.upgrade()
        else:
            store.check_known(store.revision())
    except BaseException:
        store.close()
        raise
    return store
