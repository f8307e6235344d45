"""Helpers for the deploy tests: the pinned validator versions, reading rendered files, and
editing a version's recorded environment lock as a test of `keel env check` needs."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, Final

import jsonschema
import yaml
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource

from keel.code.environment import LOCK_ARTIFACT, EnvironmentLock
from keel.deploy.source import recorded_lock
from keel.project import Project
from tests.fixtures.trained import MODEL

__all__ = [
    "ENV",
    "GRPC_ARGS",
    "K8S_VERSION",
    "MODEL",
    "SERVE_ARGS",
    "iter_probes",
    "kserve_validator",
    "load_yaml",
    "lock_of",
    "rendered_files",
    "replace_recorded_lock",
]

ENV: Final = {"KEEL_USER": "ana"}
#: The Kubernetes version the manifests are validated against (kubernetes-validate's schemas).
K8S_VERSION: Final = "1.31.0"
#: What the containers run, spelt out independently of keel.deploy.container.
#: In a container: every interface, the fixed port, a worker per core of its CPU limit.
SERVE_ARGS: Final = [
    "serve",
    "--host",
    "0.0.0.0",  # noqa: S104 - in a container
    "--port",
    "8080",
    "--workers",
    "2",
]
#: With the gRPC port too, where the recorded environment has the grpc extra (as the test
#: environment, and so the trained template's lock, does).
GRPC_ARGS: Final = [*SERVE_ARGS, "--grpc-port", "8081"]
SCHEMA: Final = Path(__file__).parent / "schemas" / "inferenceservice-v1beta1.schema.json"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rendered_files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` by POSIX path, hidden ones included."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def lock_of(folder: Path, ref: str) -> EnvironmentLock:
    with Project.open(folder, env=ENV) as project:
        return recorded_lock(project, project.metadata.models.resolve(ref))


def replace_recorded_lock(
    folder: Path, ref: str, edit: Callable[[EnvironmentLock], EnvironmentLock]
) -> EnvironmentLock:
    """Make `ref`'s run record `edit(lock)` instead of its lock, and return the new lock.

    A finished run is read-only through keel's API, on purpose; the test stores the edited
    lock as an artifact and points the run's record at it in SQLite, as a tampered or
    hand-edited store would.
    """
    with Project.open(folder, env=ENV) as project:
        version = project.metadata.models.resolve(ref)
        edited = edit(recorded_lock(project, version))
        staged = folder / "edited-environment.json"
        staged.write_bytes(edited.to_json())
        record = project.put_artifact(staged, media_type="application/json")
        staged.unlink()
        database = project.settings.db_url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as connection:
        changed = connection.execute(
            "UPDATE run_artifacts SET digest = ?, size = ? WHERE run_id = ? AND name = ?",
            (str(record.digest), record.size, version.run_id, LOCK_ARTIFACT),
        ).rowcount
    assert changed == 1
    return edited


@cache
def _kubernetes_definitions() -> Resource[Any]:
    return Resource.from_contents(
        schema_contents(
            f"kubernetes-json-schema/v{K8S_VERSION}-local-strict/_definitions.json", K8S_VERSION
        )
    )


def kserve_validator() -> jsonschema.protocols.Validator:
    """The vendored InferenceService schema, its Kubernetes types resolved to
    kubernetes-validate's strict definitions for K8S_VERSION."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    registry: Registry[Any] = Registry().with_resources(
        [
            ("https://kubernetes.io/api/_definitions.json", _kubernetes_definitions()),
            (schema["$id"], Resource.from_contents(schema)),
        ]
    )
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema, registry=registry)


def iter_probes(container: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name in ("startupProbe", "livenessProbe", "readinessProbe"):
        if name in container:
            yield name, container[name]
