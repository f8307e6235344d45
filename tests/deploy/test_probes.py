"""The health checks every rendered file points at are keel serve's real health routes: the
paths exist in the app, and a running server answers them."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path
from typing import Any

from starlette.routing import Route

from keel.deploy.container import LIVE_PATH, PORT, READY_PATH
from keel.server import create_app
from tests.deploy.support import MODEL, iter_probes, load_yaml
from tests.fixtures.cli import Keel
from tests.serving.support import open_project, serve, set_alias


def _rendered_health_checks(keel: Keel, project: Path, out: Path) -> dict[str, tuple[str, Any]]:
    """(path, port) of every probe and healthcheck the three targets render, by origin."""
    checks: dict[str, tuple[str, Any]] = {}
    for target in ("docker", "kubernetes", "kserve"):
        result = keel(
            "-C", project, "deploy", "render", target, "--model", f"{MODEL}@1", "-o", out / target
        )
        assert result.code == 0, result.err
    deployment = load_yaml(out / "kubernetes" / "deployment.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for name, probe in iter_probes(container):
        port = probe["httpGet"]["port"]
        checks[f"kubernetes {name}"] = (probe["httpGet"]["path"], ports.get(port, port))
    service = load_yaml(out / "kserve" / "inferenceservice.yaml")
    (container,) = service["spec"]["predictor"]["containers"]
    for name, probe in iter_probes(container):
        checks[f"kserve {name}"] = (probe["httpGet"]["path"], probe["httpGet"]["port"])
    dockerfile = (out / "docker" / "Dockerfile.serve").read_text(encoding="utf-8")
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/[^'\"]*)", dockerfile)
    assert url is not None, dockerfile
    checks["docker HEALTHCHECK"] = (url.group(2), int(url.group(1)))
    return checks


def test_probes_point_at_keel_serve_health_routes(
    keel: Keel, release_project: Path, tmp_path: Path
) -> None:
    checks = _rendered_health_checks(keel, release_project, tmp_path)
    assert {path for path, _ in checks.values()} == {LIVE_PATH, READY_PATH}
    # Every check uses the port keel serve is started on in the containers.
    assert {port for _, port in checks.values()} == {PORT}

    with open_project(release_project) as project:
        set_alias(project, "production", 1)
        app, _ = create_app(project, api=False)
        routes = {r.path for r in app.routes if isinstance(r, Route) and "GET" in (r.methods or ())}
        assert {path for path, _ in checks.values()} <= routes

        with serve(project) as (url, _):
            for origin, (path, _) in sorted(checks.items()):
                with urllib.request.urlopen(url + path, timeout=10) as response:  # noqa: S310 - loopback
                    assert response.status == 200, origin
