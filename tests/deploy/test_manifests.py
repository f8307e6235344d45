"""`keel deploy render kubernetes|kserve`: manifests that the API server would accept,
checked strictly (no unknown field) against a pinned Kubernetes version and KServe's
InferenceService schema."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from keel.deploy.container import GID, KEYS_DIR, PORT, UID
from tests.deploy.support import (
    GRPC_ARGS,
    K8S_VERSION,
    MODEL,
    SERVE_ARGS,
    iter_probes,
    kserve_validator,
    load_yaml,
)
from tests.fixtures.cli import Keel

KINDS = {
    "deployment.yaml": "Deployment",
    "service.yaml": "Service",
    "hpa.yaml": "HorizontalPodAutoscaler",
    "pdb.yaml": "PodDisruptionBudget",
}


def _render(keel: Keel, project: Path, target: str, out: Path, *extra: str) -> Path:
    result = keel(
        "-C", project, "deploy", "render", target, "--model", f"{MODEL}@1", "-o", out, *extra
    )
    assert result.code == 0, result.err
    return out


@pytest.fixture
def kubernetes(keel: Keel, trained_template: Path, tmp_path: Path) -> Path:
    return _render(
        keel,
        trained_template,
        "kubernetes",
        tmp_path / "k8s",
        "--replicas",
        "3",
        "--image",
        "registry.example.com/ml/flights:v1",
    )


@pytest.fixture
def kserve(keel: Keel, trained_template: Path, tmp_path: Path) -> dict[str, Any]:
    out = _render(keel, trained_template, "kserve", tmp_path / "kserve", "--replicas", "3")
    document: dict[str, Any] = load_yaml(out / "inferenceservice.yaml")
    return document


@pytest.mark.parametrize("name", sorted(KINDS))
def test_kubernetes_manifests_validate_strictly(kubernetes: Path, name: str) -> None:
    document = load_yaml(kubernetes / name)
    assert document["kind"] == KINDS[name]
    # Raises on an unknown field, a wrong type or a missing required field.
    kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_strict_validation_is_not_vacuous(kubernetes: Path) -> None:
    document = load_yaml(kubernetes / "deployment.yaml")
    document["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_the_deployment_runs_keel_serve_unprivileged_with_the_store_secret(
    kubernetes: Path,
) -> None:
    deployment = load_yaml(kubernetes / "deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "registry.example.com/ml/flights:v1"
    # gRPC on 8081 too: the recorded environment has the grpc extra.
    assert container["args"] == GRPC_ARGS
    # A `keel serve` worker per core the container may use.
    workers = container["args"][container["args"].index("--workers") + 1]
    assert container["resources"]["limits"]["cpu"] == workers
    assert container["ports"] == [
        {"name": "http", "containerPort": PORT, "protocol": "TCP"},
        {"name": "grpc", "containerPort": 8081, "protocol": "TCP"},
    ]
    assert container["envFrom"] == [{"secretRef": {"name": f"{MODEL}-store"}}]
    # Nothing secret is written into the manifests: only where the keys are mounted.
    assert container["env"] == [{"name": "KEEL_KEYS", "value": KEYS_DIR}]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == UID
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == UID
    assert security["runAsGroup"] == GID
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    # keel's scratch folder and /tmp are writable volumes on the read-only filesystem.
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"/app/.keel", "/tmp", KEYS_DIR}
    assert container["resources"]["requests"]["cpu"]  # the HPA's utilisation needs it
    assert {name for name, _ in iter_probes(container)} == {
        "startupProbe",
        "livenessProbe",
        "readinessProbe",
    }


def test_replicas_reach_the_deployment_autoscaler_and_budget(kubernetes: Path) -> None:
    deployment = load_yaml(kubernetes / "deployment.yaml")
    hpa = load_yaml(kubernetes / "hpa.yaml")
    pdb = load_yaml(kubernetes / "pdb.yaml")
    service = load_yaml(kubernetes / "service.yaml")
    assert deployment["spec"]["replicas"] == 3
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert service["spec"]["selector"] == selector == pdb["spec"]["selector"]["matchLabels"]
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        (80, "http"),
        (8081, "grpc"),
    ]
    assert deployment["metadata"]["annotations"]["keel/model"] == f"{MODEL}@1"


def test_the_inference_service_validates_against_kserve_schema(kserve: dict[str, Any]) -> None:
    kserve_validator().validate(kserve)
    predictor = kserve["spec"]["predictor"]
    assert 0 <= predictor["minReplicas"] <= predictor["maxReplicas"]  # KServe's webhook rule


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "predictor", "minReplica"), 2),  # a misspelt component field
        (("spec", "predictor", "containers", 0, "readinessProbes"), {}),  # a Container typo
        (("spec", "predictor", "scaleMetric"), "latency"),  # outside KServe's enum
        (("metadata", "name"), "Flights_Delay"),  # not an InferenceService name
    ],
)
def test_the_kserve_schema_is_not_vacuous(
    kserve: dict[str, Any], path: tuple[str | int, ...], value: object
) -> None:
    broken = copy.deepcopy(kserve)
    node: Any = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        kserve_validator().validate(broken)


def test_the_predictor_is_keel_serve_on_kserve_port(kserve: dict[str, Any]) -> None:
    predictor = kserve["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (3, 12)
    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container"
    assert container["image"] == f"{MODEL}:v1"  # the default tag
    # Knative routes one port: HTTP, which every OIP client also speaks.
    assert container["args"] == SERVE_ARGS
    # A `keel serve` worker per core the container may use.
    workers = container["args"][container["args"].index("--workers") + 1]
    assert container["resources"]["limits"]["cpu"] == workers
    # Knative serves one port, named http1; the probes must use it.
    assert container["ports"] == [{"name": "http1", "containerPort": 8080, "protocol": "TCP"}]
    assert "startupProbe" not in container  # Knative refuses it
    for _, probe in iter_probes(container):
        assert probe["httpGet"]["port"] == 8080
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["envFrom"] == [{"secretRef": {"name": f"{MODEL}-store"}}]


def _keys_mount(container: dict[str, Any], volumes: list[dict[str, Any]]) -> dict[str, Any]:
    """The volume mounted at KEEL_KEYS, checked to be read-only and the keys Secret."""
    env = {item["name"]: item.get("value") for item in container.get("env", [])}
    assert env["KEEL_KEYS"] == KEYS_DIR
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == KEYS_DIR]
    assert mount["readOnly"] is True
    (volume,) = [v for v in volumes if v["name"] == mount["name"]]
    return volume


def test_servers_mount_the_public_key_from_a_secret(
    kubernetes: Path, kserve: dict[str, Any]
) -> None:
    """Servers verify every package's signature with the project's public key, mounted from
    a Secret the operator creates; the private key is never part of a manifest or image."""
    pod = load_yaml(kubernetes / "deployment.yaml")["spec"]["template"]["spec"]
    volume = _keys_mount(pod["containers"][0], pod["volumes"])
    assert volume["secret"]["secretName"] == f"{MODEL}-keys"
    predictor = kserve["spec"]["predictor"]
    volume = _keys_mount(predictor["containers"][0], predictor["volumes"])
    assert volume["secret"]["secretName"] == f"{MODEL}-keys"
    header = (kubernetes / "deployment.yaml").read_text(encoding="utf-8").split("\napiVersion")[0]
    assert f"{MODEL}-keys" in header and "signing.pub" in header
    for path in kubernetes.rglob("*"):
        assert "PRIVATE KEY" not in path.read_text(encoding="utf-8")
