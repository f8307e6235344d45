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
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, Unpack

from keel.artifacts.base import ArtifactStore, GcReport, ProgressCallback
from keel.domain.digest import Digest
from keel.domain.health import StoreHealth
from keel.errors import IntegrityError, KeelError, NotFound
from keel.metadata.base import ArtifactRecord, MetadataStore
from keel.scaffold import scaffold
from keel.settings import KNOWN_VARIABLES, Settings, find_project_dir
from keel.spec import ProjectSpec, load_spec

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    from keel.data.snapshot import SnapshotResult
    from keel.domain.model import ModelVersion
    from keel.keys import KeyRing, Verifier
    from keel.models.package import LoadedModel
    from keel.release.checkpoints import Checkpoints
    from keel.spec import SqlSource
    from keel.tracking import RunContext, RunOptions, Tracker

__all__ = ["ProjectStatus", "VerifyReport", "Workspace"]

_log = logging.getLogger(__name__)


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

    #: Loaded model packages kept per open project (by content digest, so never stale).
    MODEL_CACHE_SIZE = 8

    def __init__(self, settings: Settings, spec: ProjectSpec) -> None:
        self.settings = settings
        self.spec = spec
        self._models: OrderedDict[Digest, LoadedModel] = OrderedDict()
        self._models_lock = threading.Lock()

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
        example: str | None = None,
    ) -> Self:
        """Scaffold keel.yaml in `directory`, create both stores, and open the project."""
        environ = dict(os.environ if env is None else env)
        folder = Path(directory).expanduser().resolve()
        user = environ.get("KEEL_USER", "").strip() or _default_user(folder, environ)
        if example is not None:
            from keel.examples import write_example

            write_example(example, folder, user=user, force=force)
        else:
            scaffold(folder, name=name, user=user, force=force)
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
        from keel.release.checkpoints import Checkpoints

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

    def load_model(self, version: ModelVersion) -> LoadedModel:
        """A registered version's package, verified by signature and hash, then loaded.

        The version's signature (the project's key over its name, number, package digest
        and flavor) is checked against the trusted public keys of `KEEL_KEYS` before
        anything of the package is read, since loading runs the packaged feature code:
        `IntegrityError` naming the version for an unsigned version (unless
        `release.unsigned_packages` is `warn`), a bad signature or an untrusted key.

        The last `MODEL_CACHE_SIZE` packages loaded stay in memory for the life of this
        Workspace: packages are content-addressed, so a kept one can never be stale, and a
        server switching back (rollback) or a gate scoring the champion again pays nothing.
        """
        # Checked on every call, cache hit or not: a version re-pointed in the database at a
        # package loaded earlier for another version must still be refused.
        self._check_signature(version)
        with self._models_lock:
            cached = self._models.get(version.package)
            if cached is not None:
                self._models.move_to_end(version.package)
                return cached
        from keel.models import load_package

        data = self.artifacts.read_bytes(version.package)  # verified against its digest
        handle, name = tempfile.mkstemp(prefix="model-", suffix=".tar", dir=self._tmp_dir())
        try:
            with os.fdopen(handle, "wb") as out:  # a scratch copy: no fsync needed
                out.write(data)
            loaded = load_package(Path(name))
        except IntegrityError as exc:
            # Signed, yet refused (the allow-list, a file not matching model.json): name the
            # version, since the package's own messages know only its files.
            raise IntegrityError(f"{version.ref}: {exc.message}", hint=exc.hint) from None
        finally:
            Path(name).unlink(missing_ok=True)
        with self._models_lock:
            self._models[version.package] = loaded
            while len(self._models) > self.MODEL_CACHE_SIZE:
                self._models.popitem(last=False)
        return loaded

    def sign_version(self, version: ModelVersion) -> ModelVersion:
        """Sign `version` with the project's signing key and store the signature, with an
        audit event: for versions registered before keel signed packages, once reviewed."""
        from keel.models.package import package_manifest, untrusted_package_types
        from keel.models.signing import sign_version

        signer = self.keys.signer(create=False)
        # The package must exist, match its digest and hold only loadable types: a signature
        # says this version may be loaded, so it is never given to what would be refused.
        with tempfile.TemporaryDirectory(prefix="keel-sign-", dir=self._tmp_dir()) as folder:
            path = Path(folder) / "model.tar"
            path.write_bytes(self.artifacts.read_bytes(version.package))
            refused = untrusted_package_types(package_manifest(path))
        if refused:
            raise IntegrityError(
                f"{version.ref} was not signed: its estimator references types keel does not "
                f"load: {', '.join(refused)}"
            )
        signature = sign_version(signer, version)
        return self.metadata.models.record_signature(
            version.model, version.version, signature, actor=self.settings.user
        )

    def _tmp_dir(self) -> Path:
        folder = self.settings.state_dir / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _check_signature(self, version: ModelVersion) -> None:
        from keel.models.signing import verify_version

        if version.signature is None and self.spec.release.unsigned_packages == "warn":
            _log.warning(
                "loading %s UNSIGNED (release.unsigned_packages: warn): its package and the "
                "code in it are trusted on the metadata store's word alone; sign it with "
                "`keel models sign %s` after review",
                version.ref,
                version.ref,
            )
            return
        verify_version(self._verifier, version)

    @cached_property
    def _verifier(self) -> Verifier:
        # Read once per open project: a server picks up a new trusted key on restart.
        return self.keys.verifier()

    def forget_loaded_models(self) -> None:
        """Drop the loaded packages `load_model` keeps (they are loaded again on next use)."""
        with self._models_lock:
            self._models.clear()

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

    # --- datasets -------------------------------------------------------------------------

    def snapshot(self, source: str | SqlSource | None = None) -> SnapshotResult:
        """Snapshot `source` (default: keel.yaml's data.source) into a dataset version."""
        from keel.data.snapshot import snapshot  # keeps `import keel` free of pyarrow

        return snapshot(self, source)

    def load_dataset(self, ref: str | Digest) -> pa.Table:
        """The data of a dataset version (`latest`, an id or a unique prefix), verified."""
        from keel.data.snapshot import load_table

        return load_table(self, ref)

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
