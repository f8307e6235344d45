"""Packages are signed at registration and verified before any packaged code runs, on SQLite
and PostgreSQL: what a database or artifact-store writer can do to a version (change its
bytes, re-point it, sign it with another key, strip its signature, smuggle a function into
the estimator) is refused by name, and a server holding only the public key serves."""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from keel.domain.digest import Digest
from keel.domain.model import ModelVersion
from keel.errors import IntegrityError
from keel.keys import KeyRing
from keel.metadata.sql.schema import model_versions
from keel.models import save_package
from keel.models.signing import sign_version, signed_claim, verify_version
from keel.pipeline.train import train
from keel.predlog.writer import open_prediction_log
from keel.project import Project
from keel.server import create_app
from keel.web.server import run_in_thread
from tests.fixtures.cli import Keel
from tests.serving.support import KEEL, free_port, wait_ready

MODEL = "tiny"
SPEC: dict[str, Any] = {
    "name": MODEL,
    "data": {"source": "data.csv", "target": "label"},
    "features": {"entry_point": "features:build"},
    "training": {
        "entry_point": "train:train",
        "split": {"method": "random", "holdout": 0.25, "seed": 1},
        "params": {"c": 1.0},
        "seed": 1,
    },
    "metrics": ["roc_auc"],
}
FEATURES = """\
def build(raw):
    return raw[["x1", "x2"]].astype(float)
"""
TRAIN = """\
from sklearn.linear_model import LogisticRegression


def train(ctx, features, target):
    return LogisticRegression(C=float(ctx.params["c"])).fit(features, target)
"""
#: What the exploit's predict would write to, were it ever loaded.
EXPLOIT_TRAIN = """\
import functools
import os

import numpy
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer


def train(ctx, features, target):
    # Not fitted as a pipeline, so training itself never calls savetxt.
    model = LogisticRegression().fit(features, target)
    write = FunctionTransformer(func=functools.partial(numpy.savetxt, os.environ["PWNED"]))
    return Pipeline([("write", write), ("model", model)])
"""


def _write_project(folder: Path, env: dict[str, str], train_code: str = TRAIN) -> None:
    Project.init(folder, env=env).close()
    (folder / "keel.yaml").write_text(yaml.safe_dump(SPEC, sort_keys=False))
    (folder / "features.py").write_text(FEATURES)
    (folder / "train.py").write_text(train_code)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(size=400), "x2": rng.normal(size=400)})
    frame["label"] = (frame["x1"] + 0.5 * frame["x2"] > 0).astype(int)
    frame.to_csv(folder / "data.csv", index=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    environ = {"KEEL_USER": "ana"}
    if request.param == "postgresql":
        environ["KEEL_DB_URL"] = request.getfixturevalue("fresh_postgres_url")
    return environ


@pytest.fixture
def project(tmp_path: Path, env: dict[str, str]) -> Iterator[Project]:
    """Two registered, signed versions of a tiny model; v2 holds `production`."""
    folder = tmp_path / "tiny"
    _write_project(folder, env)
    with Project.open(folder, env=env) as opened:
        assert _train(opened).version == 1
    SPEC_2 = {**SPEC, "training": {**SPEC["training"], "params": {"c": 0.01}}}
    (folder / "keel.yaml").write_text(yaml.safe_dump(SPEC_2, sort_keys=False))
    with Project.open(folder, env=env) as opened:
        assert _train(opened).version == 2
        _move(opened, "production", 2)
    with Project.open(folder, env=env) as opened:
        yield opened


def _train(project: Project) -> ModelVersion:
    result = train(project)
    assert result.registered is not None
    return result.registered


def _move(project: Project, alias: str, version: int) -> None:
    releases = project.metadata.releases
    releases.move_alias(
        MODEL,
        alias,
        version,
        expected_holder=releases.holder(MODEL, alias),
        actor="ana",
        reason="test",
    )


def _set(project: Project, version: int, **values: Any) -> None:
    """Write the version's row directly, as whoever holds the database's password can."""
    engine = sa.create_engine(project.settings.db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.update(model_versions)
                .where(model_versions.c.model == MODEL, model_versions.c.version == version)
                .values(**values)
            )
    finally:
        engine.dispose()


def _fresh(project: Project) -> Project:
    """The project opened again, as a new server process would (nothing loaded yet)."""
    return Project.open(project.settings.project_dir, env=_env_of(project))


def _env_of(project: Project) -> dict[str, str]:
    environ = {"KEEL_USER": "ana"}
    if not project.settings.db_url.startswith("sqlite"):
        environ["KEEL_DB_URL"] = project.settings.db_url
    return environ


def _rows() -> list[dict[str, float]]:
    return [{"x1": 0.5, "x2": -0.2}, {"x1": -1.0, "x2": 0.3}]


def _post(url: str, document: Any) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 - the test's own loopback server
        url, data=json.dumps(document).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def _serve_and_predict(project: Project) -> tuple[int, Any]:
    app, _ = create_app(project, log=open_prediction_log(project))
    with run_in_thread(app) as url:
        return _post(f"{url}/predict", {"records": _rows()})


def _load_failures(project: Project) -> list[str]:
    return [
        f"{event.model}@{event.version}: {event.reason}"
        for event in project.metadata.audit.events()
        if event.kind == "serving.load_failed"
    ]


# -- registration ------------------------------------------------------------------------------


def test_registration_signs_name_version_and_package(project: Project) -> None:
    verifier = project.keys.verifier()
    for number in (1, 2):
        version = project.metadata.models.get(MODEL, number)
        assert version.signature is not None
        assert version.signature["key_id"] in verifier.key_ids
        verify_version(verifier, version)
        assert json.loads(signed_claim(MODEL, number, version.package, "sklearn")) == {
            "kind": "keel/model-version",
            "version": 1,
            "model": MODEL,
            "model_version": number,
            "package": str(version.package),
            "flavor": "sklearn",
        }
    status, body = _serve_and_predict(project)
    assert status == 200, body
    assert body["model_version"] == 2 if "model_version" in body else True


# -- what a store writer can do, refused at load ---------------------------------------------


def test_a_version_re_pointed_at_another_package_is_refused(project: Project) -> None:
    v1 = project.metadata.models.get(MODEL, 1)
    project.load_model(v1)  # loaded and kept: the refusal must not come from the cache's miss
    _set(project, 2, package=str(v1.package))
    moved = project.metadata.models.get(MODEL, 2)
    with pytest.raises(IntegrityError, match=rf"{MODEL}@2 .*does not match") as refused:
        project.load_model(moved)
    assert "not loaded" in refused.value.message
    with _fresh(project) as server:
        status, _ = _serve_and_predict(server)
        assert status != 200
        assert any(f"{MODEL}@2" in line and "signature" in line for line in _load_failures(server))


def test_a_signature_by_an_unknown_key_is_refused(project: Project, tmp_path: Path) -> None:
    attacker = KeyRing(tmp_path / "attacker").signer()
    version = project.metadata.models.get(MODEL, 2)
    _set(project, 2, signature=json.dumps(sign_version(attacker, version)))
    with _fresh(project) as server:
        with pytest.raises(IntegrityError, match=rf"{MODEL}@2 .*not trusted here"):
            server.load_model(server.metadata.models.get(MODEL, 2))
        status, _ = _serve_and_predict(server)
        assert status != 200
        assert any(attacker.key_id in line for line in _load_failures(server))


def test_an_unsigned_version_is_refused_until_signed(
    project: Project, keel: Keel, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set(project, 2, signature=None)
    with _fresh(project) as server:
        unsigned = server.metadata.models.get(MODEL, 2)
        with pytest.raises(IntegrityError, match=rf"{MODEL}@2 is not signed") as refused:
            server.load_model(unsigned)
        assert refused.value.hint is not None
        assert f"keel models sign {MODEL}@2" in refused.value.hint
        status, _ = _serve_and_predict(server)
        assert status != 200
    # After review, the key's holder signs it; the audit log records who did.
    for name, value in _env_of(project).items():
        monkeypatch.setenv(name, value)
    signed = keel("-C", project.settings.project_dir, "models", "sign", f"{MODEL}@2", "--json")
    assert signed.code == 0, signed.err
    assert signed.json()["signed"] is True
    with _fresh(project) as server:
        assert server.metadata.models.get(MODEL, 2).signature is not None
        status, body = _serve_and_predict(server)
        assert status == 200, body
        events = [e for e in server.metadata.audit.events() if e.kind == "model.signed"]
        assert [(e.model, e.version, e.actor) for e in events] == [(MODEL, 2, "ana")]


def test_unsigned_versions_load_with_a_warning_when_keel_yaml_allows_them(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    _set(project, 2, signature=None)
    folder = project.settings.project_dir
    spec = yaml.safe_load((folder / "keel.yaml").read_text())
    spec["release"] = {"unsigned_packages": "warn"}
    (folder / "keel.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    with _fresh(project) as server, caplog.at_level(logging.WARNING, logger="keel.models.loader"):
        server.load_model(server.metadata.models.get(MODEL, 2))
    assert any(f"loading {MODEL}@2 UNSIGNED" in r.getMessage() for r in caplog.records)


def test_package_bytes_changed_in_the_artifact_store_are_refused(project: Project) -> None:
    version = project.metadata.models.get(MODEL, 2)
    stored = project.artifacts.path_of(version.package)  # type: ignore[attr-defined]
    stored.chmod(0o644)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    with _fresh(project) as server:
        with pytest.raises(IntegrityError):
            server.load_model(version)
        status, _ = _serve_and_predict(server)
        assert status != 200


def test_a_server_with_only_the_public_key_serves(project: Project, tmp_path: Path) -> None:
    public_only = tmp_path / "mounted-keys"
    public_only.mkdir()
    shutil.copy(project.keys.folder / "signing.pub", public_only / "signing.pub")
    environ = {**_env_of(project), "KEEL_KEYS": str(public_only)}
    with Project.open(project.settings.project_dir, env=environ) as server:
        status, body = _serve_and_predict(server)
        assert status == 200, body
    assert sorted(p.name for p in public_only.iterdir()) == ["signing.pub"]


def test_keel_serve_with_only_the_public_key_serves_and_creates_no_key(
    project: Project, tmp_path: Path
) -> None:
    """`keel serve` as a container runs it: KEEL_KEYS names a folder holding signing.pub alone
    (a mounted Secret); it verifies, serves, and writes no key of its own there."""
    public_only = tmp_path / "mounted-keys"
    public_only.mkdir()
    shutil.copy(project.keys.folder / "signing.pub", public_only / "signing.pub")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    environ.update(_env_of(project), KEEL_KEYS=str(public_only))
    url = f"http://127.0.0.1:{free_port()}"
    port = url.rsplit(":", 1)[1]
    command = [KEEL, "-C", project.settings.project_dir, "serve", "--port", port, "--workers", "1"]
    with (tmp_path / "serve.err").open("wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=environ)
        try:
            wait_ready(url, process)
            status, body = _post(f"{url}/predict", {"records": _rows()})
        finally:
            process.terminate()
            process.wait(timeout=60)
    assert status == 200, body
    assert sorted(p.name for p in public_only.iterdir()) == ["signing.pub"]


# -- the skops exploit ---------------------------------------------------------------------------


def _exploit(target: Path) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    model = LogisticRegression().fit(pd.DataFrame({"x1": [0.0, 1.0], "x2": [1.0, 0.0]}), [0, 1])
    write = FunctionTransformer(func=functools.partial(np.savetxt, str(target)))
    return Pipeline([("write", write), ("model", model)])


def _register_crafted(project: Project, tmp_path: Path, target: Path, signer: Any) -> int:
    """A crafted package put into the store directly and registered as the next version."""
    path = save_package(tmp_path / "crafted" / "model.tar", _exploit(target), archive=True)
    record = project.put_artifact(path)
    current = project.metadata.models.get(MODEL, 2)
    version = project.metadata.models.register(
        MODEL,
        run_id=current.run_id,
        package=record.digest,
        flavor="sklearn",
        inference_contract=current.inference_contract,
        metrics={},
        actor="mallory",
        alias=None,
        sign=lambda v: sign_version(signer, v),
    )
    # A complete registration (its run completed, a reference profile), as a database writer
    # would fake one: the signature and the allow-list, not the completeness check, must stop it.
    reference = project.metadata.monitoring.reference(MODEL, 2)
    assert reference is not None
    project.metadata.monitoring.put_reference(
        MODEL,
        version.version,
        Digest.parse(reference.profile),
        row_count=reference.row_count,
        source=reference.source,
    )
    return version.version


def test_the_exploit_signed_by_another_key_is_refused(project: Project, tmp_path: Path) -> None:
    target = tmp_path / "pwned.txt"
    (tmp_path / "crafted").mkdir()
    attacker = KeyRing(tmp_path / "attacker").signer()
    number = _register_crafted(project, tmp_path, target, attacker)
    _move(project, "production", number)
    with _fresh(project) as server:
        with pytest.raises(IntegrityError, match="not trusted here"):
            server.load_model(server.metadata.models.get(MODEL, number))
        status, _ = _serve_and_predict(server)
    assert status != 200  # nothing to serve: the only production version was refused
    assert not target.exists()


def test_the_exploit_signed_by_the_project_key_is_refused_by_the_allow_list(
    project: Project, tmp_path: Path
) -> None:
    target = tmp_path / "pwned.txt"
    (tmp_path / "crafted").mkdir()
    number = _register_crafted(project, tmp_path, target, project.keys.signer())
    _move(project, "production", number)
    with _fresh(project) as server:
        with pytest.raises(IntegrityError, match=rf"{MODEL}@{number}: .*numpy\.savetxt"):
            server.load_model(server.metadata.models.get(MODEL, number))
        status, _ = _serve_and_predict(server)
        assert any(
            f"{MODEL}@{number}" in line and "numpy.savetxt" in line
            for line in _load_failures(server)
        )
    assert status != 200
    assert not target.exists()
    # Nor does `keel models sign` vouch for it.
    with _fresh(project) as server, pytest.raises(IntegrityError, match=r"numpy\.savetxt"):
        server.sign_version(server.metadata.models.get(MODEL, number))


def test_the_exploit_is_refused_at_registration(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "pwned.txt"
    monkeypatch.setenv("PWNED", str(target))
    folder = tmp_path / "tiny"
    _write_project(folder, env, EXPLOIT_TRAIN)
    with Project.open(folder, env=env) as project:
        with pytest.raises(IntegrityError, match=r"numpy\.savetxt"):
            train(project)
        assert project.metadata.models.list_models() == []
    assert not target.exists()
