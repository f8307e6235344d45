"""What every rendered container runs, and where: one place for the port, the health routes,
the user and the store secret, so the Dockerfiles and the manifests cannot disagree."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

__all__ = [
    "APP_DIR",
    "GID",
    "GRPC_PACKAGES",
    "GRPC_PORT",
    "KEYS_DIR",
    "LIVE_PATH",
    "PORT",
    "READY_PATH",
    "STATE_DIR",
    "UID",
    "WORKERS",
    "keys_secret",
    "resource_name",
    "serve_args",
    "serves_grpc",
    "store_secret",
]

#: The port `keel serve` listens on in a container; KServe's custom predictors expect 8080.
PORT: Final = 8080
#: The port of the Open Inference Protocol over gRPC (`keel serve --grpc-port`), KServe's.
GRPC_PORT: Final = 8081
#: The distributions `--grpc-port` needs (keel's `grpc` extra). An image holds the recorded
#: environment and nothing else, so it serves gRPC only if the run's environment had them.
GRPC_PACKAGES: Final = ("grpcio", "protobuf")
#: keel serve's liveness route: answers as soon as the server accepts connections.
LIVE_PATH: Final = "/v2/health/live"
#: keel serve's readiness route: 503 until every served model is loaded.
READY_PATH: Final = "/v2/health/ready"
#: The unprivileged user the images run as. Numeric, so Kubernetes' runAsNonRoot can verify
#: it without reading /etc/passwd; above 10000 so it matches no host account.
UID: Final = 10001
GID: Final = 10001
#: The project folder inside the images (KEEL_PROJECT points here).
APP_DIR: Final = "/app"
#: keel's scratch folder (model packages are unpacked here), the only place it writes.
STATE_DIR: Final = f"{APP_DIR}/.keel"
#: Where keel's keys are mounted (KEEL_KEYS): outside the image and the project folder, so a
#: build never copies a key in. Servers need only the public key (`signing.pub`).
KEYS_DIR: Final = "/etc/keel/keys"

_NOT_DNS = re.compile(r"[^a-z0-9-]+")


#: `keel serve --workers` in a container: one per core of its CPU limit (the manifests'
#: `resources.limits.cpu`), written out rather than detected, so the file says it.
WORKERS: Final = 2


def serves_grpc(packages: Mapping[str, str]) -> bool:
    """Whether an image of this recorded environment (`{distribution: version}`) can serve
    gRPC: it has the `grpc` extra's packages."""
    return all(name in packages for name in GRPC_PACKAGES)


def serve_args(*, grpc: bool = False) -> list[str]:
    """`keel serve`'s arguments in a container: every interface, the fixed port (and the
    gRPC port with `grpc`), a worker per core of the container's CPU limit."""
    every = "0.0.0.0"  # noqa: S104 - a container's port
    args = ["serve", "--host", every, "--port", str(PORT), "--workers", str(WORKERS)]
    return [*args, "--grpc-port", str(GRPC_PORT)] if grpc else args


def resource_name(model: str) -> str:
    """A Kubernetes name for a model: a DNS-1035 label (`flights_v2.1` -> `flights-v2-1`).

    Model names may hold '.' and '_' and start with a digit; Service names may not.
    """
    name = _NOT_DNS.sub("-", model.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"model-{name}".rstrip("-")
    return name[:63].rstrip("-")


def keys_secret(model: str) -> str:
    """The Secret mounted read-only at `KEYS_DIR`: the project's public signing key
    (`signing.pub`), which servers check every model package's signature against."""
    return f"{resource_name(model)}-keys"


def store_secret(model: str) -> str:
    """The Secret whose keys become the container's environment (KEEL_DB_URL, KEEL_ARTIFACTS,
    and the object store's credentials)."""
    return f"{resource_name(model)}-store"
