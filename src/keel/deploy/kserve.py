"""A KServe InferenceService (serving.kserve.io/v1beta1) whose predictor is a custom
container running `keel serve`.

keel serve already speaks the Open Inference Protocol KServe's clients use, so the predictor
is the serving image itself on the port KServe routes to (8080), with the same probes and
Secrets as the Kubernetes Deployment (the store's, and the public signing key at KEEL_KEYS).
Knative (KServe's serverless mode) allows one port, named `http1`, and the probes must use
it. The root filesystem stays writable here: emptyDir volumes are behind a Knative feature
flag, and keel unpacks models into its state folder. Secret volumes need no flag.
"""

from __future__ import annotations

from typing import Any, Final

from keel.deploy.container import PORT, resource_name
from keel.deploy.kubernetes import (
    MAX_REPLICAS_FACTOR,
    keys_volume,
    labels,
    manifest_text,
    probes,
    serve_container,
)
from keel.deploy.source import DeploySource

__all__ = ["CONTAINER_NAME", "inference_service", "kserve_files"]

#: The name KServe gives (and expects of) a predictor's main container.
CONTAINER_NAME: Final = "kserve-container"


def _knative_probes() -> dict[str, Any]:
    found = probes(PORT)
    # Knative refuses startupProbe: liveness waits instead, so that a pod still loading its
    # models is not restarted before it could answer.
    del found["startupProbe"]
    found["livenessProbe"]["initialDelaySeconds"] = 60
    return found


def inference_service(source: DeploySource, image: str, replicas: int) -> dict[str, Any]:
    container = {
        "name": CONTAINER_NAME,
        **serve_container(source, image, read_only=False),
        "ports": [{"name": "http1", "containerPort": PORT, "protocol": "TCP"}],
        **_knative_probes(),
    }
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": resource_name(source.version.model),
            "labels": labels(source),
            "annotations": {
                "keel/model": source.version.ref,
                "keel/run": source.version.run_id,
                "keel/environment-lock": str(source.lock.digest),
            },
        },
        "spec": {
            "predictor": {
                "minReplicas": replicas,
                "maxReplicas": replicas * MAX_REPLICAS_FACTOR,
                "containers": [container],
                "volumes": [keys_volume(source)],
            }
        },
    }


def kserve_files(source: DeploySource, image: str, replicas: int) -> dict[str, bytes]:
    """Every file of the `kserve` target, by path relative to the output folder."""
    document = inference_service(source, image, replicas)
    return {"inferenceservice.yaml": manifest_text(source, "kserve", document).encode()}
