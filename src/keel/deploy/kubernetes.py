"""Kubernetes manifests for `keel serve`: a Deployment, its Service, a HorizontalPodAutoscaler
(autoscaling/v2) and a PodDisruptionBudget.

The pods run the serving image (`Dockerfile.serve`) as an unprivileged user on a read-only
root filesystem; their environment comes from a Secret the operator creates (KEEL_DB_URL,
KEEL_ARTIFACTS and the object store's credentials), never from the manifests. A second Secret,
mounted read-only at KEEL_KEYS, holds the project's public signing key: servers load only
packages signed by its private half, which stays with whoever registers models. Probes use
keel serve's own health routes: readiness holds traffic back until the models are loaded.
"""

from __future__ import annotations

import math
from typing import Any, Final

import yaml

from keel.deploy.container import (
    GID,
    GRPC_PORT,
    KEYS_DIR,
    LIVE_PATH,
    PORT,
    READY_PATH,
    STATE_DIR,
    UID,
    WORKERS,
    keys_secret,
    resource_name,
    serve_args,
    serves_grpc,
    store_secret,
)
from keel.deploy.source import DeploySource

__all__ = [
    "CONTAINER_NAME",
    "CPU_TARGET_PERCENT",
    "MAX_REPLICAS_FACTOR",
    "autoscaler",
    "deployment",
    "disruption_budget",
    "keys_volume",
    "kubernetes_files",
    "labels",
    "manifest_text",
    "probes",
    "resources",
    "serve_container",
    "service",
]

CONTAINER_NAME: Final = "keel-serve"
#: The autoscaler may grow the deployment to this many times `--replicas`.
MAX_REPLICAS_FACTOR: Final = 4
#: Scale out when the pods' CPU use averages this share of their request.
CPU_TARGET_PERCENT: Final = 70
#: Seconds of grace beyond serving.shutdown_timeout, for the process to exit.
GRACE_MARGIN_S: Final = 10


def labels(source: DeploySource) -> dict[str, str]:
    """Labels on every object; the first two are the selector (they never change)."""
    return {
        "app.kubernetes.io/name": "keel-serve",
        "app.kubernetes.io/instance": resource_name(source.version.model),
        "app.kubernetes.io/version": str(source.version.version),
        "app.kubernetes.io/managed-by": "keel",
    }


def _selector(source: DeploySource) -> dict[str, str]:
    return dict(list(labels(source).items())[:2])


def _annotations(source: DeploySource) -> dict[str, str]:
    return {
        "keel/model": source.version.ref,
        "keel/run": source.version.run_id,
        "keel/environment-lock": str(source.lock.digest),
    }


def probes(port: int | str) -> dict[str, Any]:
    """Startup and liveness on /v2/health/live, readiness on /v2/health/ready.

    The startup probe gives model loading up to five minutes before liveness may restart a
    pod; readiness keeps a pod out of the Service while a model is missing or loading.
    """
    return {
        "startupProbe": {
            "httpGet": {"path": LIVE_PATH, "port": port},
            "periodSeconds": 5,
            "failureThreshold": 60,
        },
        "livenessProbe": {
            "httpGet": {"path": LIVE_PATH, "port": port},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {"path": READY_PATH, "port": port},
            "periodSeconds": 5,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
    }


def resources() -> dict[str, Any]:
    """A starting point for a tabular model: measure, then edit the rendered file."""
    return {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        # A core per `keel serve` worker (`container.WORKERS`); each holds its own models.
        "limits": {"cpu": str(WORKERS), "memory": "2Gi"},
    }


def serve_container(
    source: DeploySource, image: str, *, read_only: bool, grpc: bool = False
) -> dict[str, Any]:
    """The keel serve container, shared by the Deployment and the KServe predictor; with
    `grpc`, serving gRPC on GRPC_PORT too."""
    return {
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": serve_args(grpc=grpc),
        "envFrom": [{"secretRef": {"name": store_secret(source.version.model)}}],
        # A path, not a secret: the keys themselves come from the mounted Secret.
        "env": [{"name": "KEEL_KEYS", "value": KEYS_DIR}],
        "volumeMounts": [{"name": _KEYS_VOLUME, "mountPath": KEYS_DIR, "readOnly": True}],
        "resources": resources(),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": GID,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": read_only,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


_KEYS_VOLUME: Final = "keel-keys"


def keys_volume(source: DeploySource) -> dict[str, Any]:
    """The volume of the keys Secret (`keys_secret`); world-readable files, since public
    keys are no secret and the pod's user must read them."""
    return {
        "name": _KEYS_VOLUME,
        "secret": {"secretName": keys_secret(source.version.model), "defaultMode": 0o444},
    }


def grace_period(source: DeploySource) -> int:
    """Seconds Kubernetes waits after SIGTERM before SIGKILL: the project's
    `serving.shutdown_timeout` (20 s by default) plus `GRACE_MARGIN_S` for the process to
    exit, so that a stopping server always finishes spilling its prediction log."""
    from keel.spec import SPEC_FILENAME, ServingSpec, parse_spec

    serving = ServingSpec()
    text = source.project_files.get(SPEC_FILENAME)
    if text is not None:
        serving = parse_spec(text.decode("utf-8"), source=SPEC_FILENAME).serving
    return math.ceil(serving.shutdown_timeout.total_seconds()) + GRACE_MARGIN_S


def deployment(source: DeploySource, image: str, replicas: int) -> dict[str, Any]:
    name = resource_name(source.version.model)
    grpc = serves_grpc(source.lock.package_versions)
    ports = [{"name": "http", "containerPort": PORT, "protocol": "TCP"}]
    if grpc:
        ports.append({"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"})
    container = {
        "name": CONTAINER_NAME,
        **serve_container(source, image, read_only=True, grpc=grpc),
        "ports": ports,
        **probes("http"),
        "volumeMounts": [
            *serve_container(source, image, read_only=True)["volumeMounts"],
            {"name": "keel-state", "mountPath": STATE_DIR},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir of the pod's own
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels(source), "annotations": _annotations(source)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": _selector(source)},
            # Never fewer ready pods than asked for during a rollout.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": labels(source), "annotations": _annotations(source)},
                "spec": {
                    "automountServiceAccountToken": False,
                    # keel serve drains requests and flushes the prediction log on SIGTERM
                    # within serving.shutdown_timeout: the pod is given that and a margin.
                    "terminationGracePeriodSeconds": grace_period(source),
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": UID,
                        "runAsGroup": GID,
                        "fsGroup": GID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        keys_volume(source),
                        {"name": "keel-state", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def service(source: DeploySource) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": resource_name(source.version.model), "labels": labels(source)},
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(source),
            "ports": [
                {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                # The Open Inference Protocol over gRPC, where the image has the grpc extra.
                *(
                    [{"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP"}]
                    if serves_grpc(source.lock.package_versions)
                    else []
                ),
            ],
        },
    }


def autoscaler(source: DeploySource, replicas: int) -> dict[str, Any]:
    name = resource_name(source.version.model)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "labels": labels(source)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": replicas,
            "maxReplicas": replicas * MAX_REPLICAS_FACTOR,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": CPU_TARGET_PERCENT,
                        },
                    },
                }
            ],
        },
    }


def disruption_budget(source: DeploySource) -> dict[str, Any]:
    # maxUnavailable rather than minAvailable: with one replica, minAvailable 1 would block
    # every node drain.
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": resource_name(source.version.model), "labels": labels(source)},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _selector(source)}},
    }


def manifest_text(source: DeploySource, target: str, document: dict[str, Any]) -> str:
    """One manifest as YAML, under a comment naming its source (keys in the order built)."""
    header = [
        f"# {document['kind']} for {source.version.ref} (run {source.version.run_id}).",
        f"# Written by `keel deploy render {target}`: render again rather than edit.",
        f"# Needs the Secrets {store_secret(source.version.model)} "
        f"(KEEL_DB_URL, KEEL_ARTIFACTS) and {keys_secret(source.version.model)} "
        "(signing.pub); see docs/deploy.md.",
    ]
    body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=100)
    return "\n".join(header) + "\n" + body


def kubernetes_files(source: DeploySource, image: str, replicas: int) -> dict[str, bytes]:
    """Every file of the `kubernetes` target, by path relative to the output folder."""
    documents = {
        "deployment.yaml": deployment(source, image, replicas),
        "service.yaml": service(source),
        "hpa.yaml": autoscaler(source, replicas),
        "pdb.yaml": disruption_budget(source),
    }
    return {
        path: manifest_text(source, "kubernetes", document).encode()
        for path, document in documents.items()
    }
