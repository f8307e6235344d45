"""`project.snapshot()`: data into an immutable dataset version, a copy or a manifest."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.verbs._engine import engine_spec

if TYPE_CHECKING:
    from keel.data.snapshot import SnapshotResult
    from keel.spec import EngineSpec, SqlSource
    from keel.workspace import Workspace

__all__ = ["snapshot"]


def snapshot(
    project: Workspace,
    source: str | SqlSource | None = None,
    *,
    manifest: bool | None = None,
    delta_version: int | None = None,
    engine: str | EngineSpec | None = None,
) -> SnapshotResult:
    """Snapshot `source` (default: keel.yaml's data.source) into a dataset version:
    a copy, or with `manifest` (default: keel.yaml's data.snapshot) a manifest of a lake
    table's files; `delta_version` picks a version of a Delta table.

    `engine` (`local`, `spark`, or a whole `EngineSpec`; default: keel.yaml's `engine:`)
    says where a new manifest version's profile is computed: on Spark, the manifest is
    listed in this process and the cluster's tasks read its files and profile them, the
    parts merged here; the version, its schema, counts and time range are the same as
    in-process. A copy runs in this process whatever keel.yaml's `engine:` says; asked for
    on Spark by `engine`, it is a `ConfigError` (field `--engine`). A failed Spark job is an
    `EngineError` and records nothing."""
    from keel.data.snapshot import snapshot as record
    from keel.data.snapshot import snapshots_manifest

    chosen = engine_spec(project, engine)
    copy = not snapshots_manifest(project, manifest)
    # keel.yaml's engine.kind is for the data work of manifests; a copy is this process's.
    if chosen.kind == "local" or (copy and engine is None):
        return record(project, source, manifest=manifest, delta_version=delta_version)
    if copy:
        from keel.errors import ConfigError

        rule = (
            "Spark profiles manifest versions of lake tables (--manifest); a copy is read "
            "into keel's store by this process: use --engine local, or --manifest"
        )
        raise ConfigError(f"--engine {chosen.kind}: {rule}", problems=[("--engine", rule)])
    from keel.engines import engine_for

    runner = engine_for(chosen)
    return record(
        project, source, manifest=True, delta_version=delta_version, scan=runner.scan_manifest
    )
