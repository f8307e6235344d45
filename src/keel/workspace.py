"""`keel.workspace.Workspace`: one keel project's settings, spec and stores.

Every service (pipeline, release, serving, monitoring, retraining) takes a Workspace: it
is the layer right above the stores. Users hold `keel.Project` (keel/project.py), a
Workspace that also carries the verbs (train, promote, monitor, ...); it is passed
wherever a Workspace is expected.

    with Workspace.open("path/to/project") as project:
        record = project.put_artifact(Path("model.bin"), holder="notebook:experiment-1")
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar, Unpack, cast

from keel.artifacts.base import ArtifactStore, GcReport, ProgressCallback
from keel.domain.digest import Digest
from keel.domain.health import StoreHealth
from keel.errors import IntegrityError, KeelError, NotFound
from keel.metadata.base import ArtifactRecord, MetadataStore
from keel.scaffold import scaffold
from keel.settings import KNOWN_VARIABLES, Settings, find_project_dir
from keel.spec import ProjectSpec, load_spec

if TYPE_CHECKING:
    from keel.audit.checkpoints import Checkpoints
    from keel.keys import KeyRing
    from keel.tracking import RunContext, RunOptions, Tracker

__all__ = ["ProjectStatus", "VerifyReport", "Workspace"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ProjectStatus:
    name: str
    project_dir: Path
    user: str
    stores: list[StoreHealth]
    schema_revision: str | None
    schema_head: str
    artifacts_recorded: int
    dataset_versions: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(store.ok for store in self.stores)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "project": {"name": self.name, "dir": str(self.project_dir)},
            "user": self.user,
            "stores": {
                store.kind: {
                    "backend": store.backend,
                    "url": store.url,
                    "ok": store.ok,
                    "detail": store.detail,
                    "latency_ms": round(store.latency_ms, 3),
                }
                for store in self.stores
            },
            "schema": {"revision": self.schema_revision, "head": self.schema_head},
            "counts": {
                "artifacts": self.artifacts_recorded,
                "dataset_versions": self.dataset_versions,
            },
            "warnings": self.warnings,
        }


@dataclass(frozen=True, slots=True)
class VerifyReport:
    checked: int
    corrupt: list[Digest]
    missing: list[Digest]

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.missing


class Workspace:
    """A keel project: its spec, settings, metadata store and artifact store.

    Stores open on first use, so commands that need neither (e.g. validating keel.yaml)
    never touch a database.
    """

    def __init__(self, settings: Settings, spec: ProjectSpec) -> None:
        self.settings = settings
        self.spec = spec
        self._kept: dict[type, object] = {}
        self._kept_lock = threading.Lock()

    @classmethod
    def open(cls, path: Path | str | None = None, *, env: Mapping[str, str] | None = None) -> Self:
        """Open the project at `path`, or the nearest keel.yaml from the cwd (or KEEL_PROJECT)."""
        environ = dict(os.environ if env is None else env)
        if path is not None:
            project_dir = Path(path).expanduser().resolve()
        else:
            project_dir = find_project_dir(Path.cwd(), environ)
        spec = load_spec(project_dir / "keel.yaml")
        return cls(Settings.load(project_dir, spec, environ), spec)

    @classmethod
    def init(
        cls,
        directory: Path | str,
        *,
        name: str | None = None,
        force: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> Self:
        """Scaffold keel.yaml in `directory`, create both stores, and open the project."""
        environ = dict(os.environ if env is None else env)
        folder = Path(directory).expanduser().resolve()
        scaffold(folder, name=name, user=cls._owner(folder, environ), force=force)
        return cls._open_new(folder, environ)

    @staticmethod
    def _owner(folder: Path, environ: Mapping[str, str]) -> str:
        """Who a new project names as the owner of every stage."""
        return environ.get("KEEL_USER", "").strip() or _default_user(folder, environ)

    @classmethod
    def _open_new(cls, folder: Path, environ: dict[str, str]) -> Self:
        """Open the project just written in `folder`, creating both stores."""
        environ.pop("KEEL_PROJECT", None)
        project = cls.open(folder, env=environ)
        project.metadata  # noqa: B018 - creates and migrates the database
        project.artifacts  # noqa: B018 - creates the artifact folder
        return project

    # --- stores ---------------------------------------------------------------------------

    @cached_property
    def metadata(self) -> MetadataStore:
        # Imported here: SQLAlchemy and Alembic cost a quarter second that commands
        # which never touch the database should not pay.
        from keel.metadata import open_metadata_store

        self._make_state_dir()
        # Webhook secrets are sealed with a key outside the database (`keel.keys`).
        store = open_metadata_store(self.settings.db_url, sealer=lambda: self.keys.secret_box())
        store.audit.on_commit(self._audit_committed)
        return store

    @cached_property
    def audit_checkpoints(self) -> Checkpoints:
        """Signed checkpoints of the audit log's head, in the artifact store."""
        from keel.audit.checkpoints import Checkpoints

        return Checkpoints(
            self.metadata.audit,
            self.artifacts,
            self.keys,
            every=self.spec.release.audit_checkpoint_every,
        )

    def _audit_committed(self, seq: int, digest: str) -> None:
        # Most events need no checkpoint: decide before opening the artifact store or keys.
        if seq % self.spec.release.audit_checkpoint_every == 0 or (
            "audit_checkpoints" in self.__dict__
        ):
            self.audit_checkpoints.committed(seq, digest)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        from keel.artifacts.registry import open_artifact_store

        self._make_state_dir()
        return open_artifact_store(self.settings.artifacts_url)

    def _make_state_dir(self) -> None:
        """Create `.keel` owner-only (0700) if it is missing: whichever store or key comes
        first, the database, artifacts, keys and spooled predictions in it are nobody
        else's to read. An existing folder keeps the mode its owner gave it."""
        state = self.settings.state_dir
        if not state.exists() and state.parent.is_dir():
            with contextlib.suppress(FileExistsError):
                state.mkdir(mode=0o700)

    @cached_property
    def keys(self) -> KeyRing:
        """keel's keys (`KEEL_KEYS`): package signatures, audit checkpoints, secrets at rest."""
        # Imported here: `cryptography` is needed only by the commands that sign or verify.
        from keel.keys import KeyRing

        self._make_state_dir()
        return KeyRing(self.settings.keys_dir)

    def close(self) -> None:
        if "metadata" in self.__dict__:
            self.metadata.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- artifacts ------------------------------------------------------------------------

    def put_artifact(
        self,
        path: Path,
        *,
        media_type: str = "application/octet-stream",
        holder: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> ArtifactRecord:
        """Store a file and record it. The object is durable before its record is written,
        so a crash in between leaves an unrecorded object that `gc` removes, never a record
        pointing at missing bytes."""
        stored = self.artifacts.put_file(path, progress=progress)
        return self.metadata.artifacts.record(
            stored.digest,
            size=stored.size,
            media_type=media_type,
            actor=self.settings.user,
            holder=holder,
        )

    def get_artifact(
        self, digest: Digest, dest: Path, *, progress: ProgressCallback | None = None
    ) -> ArtifactRecord:
        record = self.metadata.artifacts.get(digest)
        self.artifacts.get_file(digest, dest, progress=progress)
        return record

    def gc(self, *, grace: timedelta = timedelta(hours=1), dry_run: bool = False) -> GcReport:
        """Delete unreferenced artifacts older than `grace`, then forget their records."""
        keep = self.metadata.artifacts.referenced()
        if dry_run:
            cutoff = time.time() - grace.total_seconds()
            objects = list(self.artifacts.iter_objects())
            doomed = [
                info
                for info in objects
                if info.digest not in keep and info.modified.timestamp() < cutoff
            ]
            return GcReport(
                deleted=[info.digest for info in doomed],
                freed_bytes=sum(info.size for info in doomed),
                kept=len(objects) - len(doomed),
            )
        report = self.artifacts.gc(keep, grace=grace)
        self.metadata.artifacts.forget(report.deleted)
        return report

    def verify_artifacts(self) -> VerifyReport:
        """Re-hash every recorded object: what is corrupt, and what is missing."""
        corrupt: list[Digest] = []
        missing: list[Digest] = []
        records = self.metadata.artifacts.list()
        for record in records:
            try:
                self.artifacts.verify(record.digest)
            except NotFound:
                missing.append(record.digest)
            except IntegrityError:
                corrupt.append(record.digest)
        return VerifyReport(checked=len(records), corrupt=corrupt, missing=missing)

    # --- what services keep per open project ----------------------------------------------

    def keep(self, kind: type[_T], build: Callable[[], _T]) -> _T:
        """The one `kind` object this open project keeps, built by `build` on first use.

        Services keep their state for the life of the open project here (the packages
        `keel.models.loader` has loaded), without the Workspace knowing them: every
        service sits above it.
        """
        with self._kept_lock:
            kept = self._kept.get(kind)
            if kept is None:
                kept = self._kept[kind] = build()
        return cast(_T, kept)

    # --- runs -----------------------------------------------------------------------------

    def start_run(self, **options: Unpack[RunOptions]) -> RunContext:
        """Start a tracked run as this project's user; use it in a `with` block.

        Options are the run's configured `params`, `tags`, `seed` and lineage (see
        `keel.tracking.RunOptions`); artifacts the run logs go to the project's store.
        """
        return self._tracker.start_run(**options)

    @cached_property
    def _tracker(self) -> Tracker:
        # One per project, so that its runs share one heartbeat thread.
        from keel.tracking import Tracker

        return Tracker(self.metadata, user=self.settings.user, artifacts=lambda: self.artifacts)

    # --- status ---------------------------------------------------------------------------

    def status(self) -> ProjectStatus:
        """Health of both stores; never raises for an unreachable store, reports it."""
        known = ", ".join(sorted(KNOWN_VARIABLES))
        warnings = [
            f"unknown environment variable {name} (known: {known})"
            for name in self.settings.unknown_variables
        ]
        missing_owners = self.spec.owners.missing()
        if missing_owners:
            warnings.append(f"stages without an owner: {', '.join(missing_owners)}")
        stores: list[StoreHealth] = []
        revision: str | None = None
        head = ""
        recorded = 0
        datasets = 0
        try:
            metadata = self.metadata
            stores.append(metadata.health())
            schema = metadata.revision()
            revision, head = schema.current, schema.head
            recorded = metadata.artifacts.count()
            datasets = metadata.datasets.count()
        except KeelError as exc:
            stores.append(_unreachable("metadata", self.settings.db_url, exc))
        from keel.metadata import exposed_sqlite_files

        warnings.extend(exposed_sqlite_files(self.settings.db_url))
        try:
            stores.append(self.artifacts.health())
        except KeelError as exc:
            stores.append(_unreachable("artifacts", self.settings.artifacts_url, exc))
        return ProjectStatus(
            name=self.spec.name,
            project_dir=self.settings.project_dir,
            user=self.settings.user,
            stores=stores,
            schema_revision=revision,
            schema_head=head,
            artifacts_recorded=recorded,
            dataset_versions=datasets,
            warnings=warnings,
        )


def _unreachable(kind: str, url: str, exc: KeelError) -> StoreHealth:
    from keel.metadata import redact_url

    backend = url.split(":", 1)[0] if "://" in url else "local"
    return StoreHealth(
        kind=kind,
        backend=backend,
        url=redact_url(url) if kind == "metadata" else url,
        ok=False,
        detail=str(exc),
        latency_ms=0.0,
    )


def _default_user(folder: Path, env: Mapping[str, str]) -> str:
    return Settings.load(folder, ProjectSpec(name="x"), env).user
