"""Container images for a model version: `Dockerfile.serve`, `Dockerfile.train`, the pinned
`requirements.lock` and the build context they copy from.

The build context is the rendered folder itself (`docker build -f Dockerfile.serve DIR`),
so it is complete and portable: keel.yaml and the version's code are copied in by the render,
and the `.dockerignore` lets in nothing else. The models themselves are not in the images:
`keel serve` reads them from the shared store that KEEL_DB_URL and KEEL_ARTIFACTS name at
run time, and serves whichever version holds `production`.
"""

from __future__ import annotations

import json
from typing import Final

from keel.code.environment import EnvironmentLock
from keel.deploy.container import (
    APP_DIR,
    GID,
    GRPC_PORT,
    KEYS_DIR,
    PORT,
    READY_PATH,
    STATE_DIR,
    UID,
    serve_args,
    serves_grpc,
)
from keel.deploy.source import DeploySource
from keel.errors import ConfigError

__all__ = [
    "PROJECT_DIR",
    "REQUIREMENTS",
    "base_image",
    "docker_files",
    "dockerignore",
    "requirements_lock",
    "serve_dockerfile",
    "train_dockerfile",
]

REQUIREMENTS: Final = "requirements.lock"
#: Where the render puts the project files inside the build context.
PROJECT_DIR: Final = "project"

#: Packaging tools the official Python images ship; removed when the run did not have them.
_BASE_IMAGE_TOOLS: Final = ("wheel", "setuptools", "pip")

_HEALTHCHECK_SCRIPT: Final = (
    "import urllib.request; "
    f"urllib.request.urlopen('http://127.0.0.1:{PORT}{READY_PATH}', timeout=4)"
)


def base_image(lock: EnvironmentLock) -> str:
    """The official Python image of the recorded interpreter, to the patch release."""
    if lock.python_implementation != "CPython":
        raise ConfigError(
            f"the lock records {lock.python_implementation} {lock.python_version}; "
            "keel renders images only for CPython (python:<version>-slim)",
            problems=[("environment.python.implementation", "must be CPython")],
        )
    return f"python:{lock.python_version}-slim"


def requirements_lock(source: DeploySource) -> str:
    """Every distribution the run recorded, `name==version`, sorted by name."""
    lock = source.lock
    lines = [
        f"# Every distribution {source.version.ref}'s run {source.version.run_id} recorded,",
        f"# pinned to the recorded version (environment lock {lock.digest}):",
        f"# {lock.python_implementation} {lock.python_version} on {lock.system} {lock.machine}.",
        "# Installed with --no-deps: the lock is the whole environment, nothing is resolved.",
        *(f"{name}=={version}" for name, version in lock.packages),
    ]
    return "\n".join(lines) + "\n"


def _header(source: DeploySource, name: str, what: str) -> list[str]:
    version = source.version
    return [
        f"# {name}: {what} for {version.ref} (run {version.run_id}).",
        "# Written by `keel deploy render docker`: render again rather than edit.",
        f"# Build from this folder: docker build -f {name} -t IMAGE .",
    ]


def _labels(source: DeploySource, role: str) -> list[str]:
    version = source.version
    labels = {
        "org.opencontainers.image.title": f"{version.model} ({role})",
        "org.opencontainers.image.version": str(version.version),
        "keel.model": version.ref,
        "keel.run": version.run_id,
        "keel.environment-lock": str(source.lock.digest),
    }
    if source.git_commit:
        labels["org.opencontainers.image.revision"] = source.git_commit
    pairs = [f"{key}={json.dumps(value)}" for key, value in labels.items()]
    return ["LABEL " + " \\\n      ".join(pairs)]


def _unrecorded_tools(lock: EnvironmentLock) -> list[str]:
    """The official images' packaging tools the run did not have, pip last (it removes
    itself), so that `keel env check` in the image finds no extra package."""
    recorded = lock.package_versions
    return [name for name in _BASE_IMAGE_TOOLS if name not in recorded]


def _install(lock: EnvironmentLock) -> list[str]:
    tools = _unrecorded_tools(lock)
    uninstall = [f"    && pip uninstall --yes {' '.join(tools)} \\"] if tools else []
    return [
        "ENV PYTHONDONTWRITEBYTECODE=1 \\",
        "    PYTHONUNBUFFERED=1 \\",
        "    PIP_DISABLE_PIP_VERSION_CHECK=1 \\",
        f"    KEEL_PROJECT={APP_DIR} \\",
        # Mounted at run time (a Kubernetes Secret, `docker run -v`), never built in: servers
        # get the public key only, a training job the private key too.
        f"    KEEL_KEYS={KEYS_DIR}",
        "",
        f"WORKDIR {APP_DIR}",
        "",
        "# The recorded environment, package for package, and nothing else; then the",
        "# unprivileged user, and keel's scratch folder, the only place it writes.",
        f"COPY {REQUIREMENTS} /tmp/{REQUIREMENTS}",
        f"RUN pip install --no-cache-dir --no-deps --requirement /tmp/{REQUIREMENTS} \\",
        *uninstall,
        f"    && groupadd --system --gid {GID} keel \\",
        f"    && useradd --system --uid {UID} --gid keel --no-create-home \\",
        "       --home-dir /nonexistent --shell /usr/sbin/nologin keel \\",
        f"    && mkdir -p {STATE_DIR} \\",
        f"    && chown keel:keel {STATE_DIR}",
    ]


def _exec(words: list[str]) -> str:
    return json.dumps(words)


def serve_dockerfile(source: DeploySource) -> str:
    # gRPC too where the recorded environment has the grpc extra (the image has nothing else).
    grpc = serves_grpc(source.lock.package_versions)
    lines = [
        *_header(source, "Dockerfile.serve", "the serving image"),
        f"FROM {base_image(source.lock)}",
        "",
        *_labels(source, "serve"),
        "",
        *_install(source.lock),
        "",
        "# keel.yaml only: the model packages (estimator and feature code) come from the store.",
        f"COPY {PROJECT_DIR}/keel.yaml {APP_DIR}/keel.yaml",
        "",
        f"USER {UID}:{GID}",
        f"EXPOSE {PORT} {GRPC_PORT}" if grpc else f"EXPOSE {PORT}",
        "HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \\",
        f"    CMD {_exec(['python', '-c', _HEALTHCHECK_SCRIPT])}",
        f"ENTRYPOINT {_exec(['keel'])}",
        f"CMD {_exec(serve_args(grpc=grpc))}",
    ]
    return "\n".join(lines) + "\n"


def train_dockerfile(source: DeploySource) -> str:
    lines = [
        *_header(source, "Dockerfile.train", "the training image"),
        f"FROM {base_image(source.lock)}",
        "",
        *_labels(source, "train"),
        "",
        *_install(source.lock),
        "",
        "# keel.yaml, the feature and training code, the data contract; owned by root, so the",
        "# keel user can read but not change them.",
        f"COPY {PROJECT_DIR}/ {APP_DIR}/",
        "",
        f"USER {UID}:{GID}",
        "# A batch job, not a server: nothing to probe.",
        "HEALTHCHECK NONE",
        f"ENTRYPOINT {_exec(['keel'])}",
        "# Rebuild this version from its dataset in the store and compare the metrics;",
        "# `docker run IMAGE train` trains a new version instead.",
        f"CMD {_exec(['reproduce', source.version.ref])}",
    ]
    return "\n".join(lines) + "\n"


def dockerignore() -> str:
    lines = [
        "# The build context is this folder: only what the Dockerfiles copy goes in.",
        "*",
        f"!{REQUIREMENTS}",
        f"!{PROJECT_DIR}/",
        "**/__pycache__",
        "**/*.pyc",
        f"{PROJECT_DIR}/.keel",
        # keel's keys never enter an image, wherever KEEL_KEYS put them.
        "**/signing.key",
        "**/secrets.key",
    ]
    return "\n".join(lines) + "\n"


def docker_files(source: DeploySource) -> dict[str, bytes]:
    """Every file of the `docker` target, by path relative to the output folder."""
    files = {
        "Dockerfile.serve": serve_dockerfile(source).encode(),
        "Dockerfile.train": train_dockerfile(source).encode(),
        REQUIREMENTS: requirements_lock(source).encode(),
        ".dockerignore": dockerignore().encode(),
    }
    for path, data in source.project_files.items():
        files[f"{PROJECT_DIR}/{path}"] = data
    return files
