"""`keel models list|show`, over versions registered through the Python API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keel.domain.model import ModelVersion
from keel.project import Project
from tests.fixtures.cli import Keel

CONTRACT: dict[str, Any] = {
    "kind": "keel.inference-contract",
    "version": 1,
    "inputs": [
        {"name": "distance", "type": "float", "nullable": False},
        {"name": "carrier", "type": "string", "nullable": True},
    ],
    "outputs": [{"name": "prediction", "type": "integer"}],
}


def _register(project: Project, model: str, auc: float, **options: Any) -> ModelVersion:
    with project.start_run() as run:
        package = project.settings.project_dir / f"{model}-{auc}.bin"
        package.write_bytes(f"{model} {auc}".encode())
        record = project.put_artifact(package)
        return project.metadata.models.register(
            model,
            run_id=run.id,
            package=record.digest,
            flavor="sklearn",
            inference_contract=CONTRACT,
            metrics={"auc": auc},
            actor=project.settings.user,
            **options,
        )


def _project(tmp_path: Path) -> Project:
    return Project.init(tmp_path, env={"KEEL_USER": "ana"})


def test_models_list_and_show(keel: Keel, tmp_path: Path) -> None:
    with _project(tmp_path) as project:
        assert "no models yet" in keel("models", "list").out
        assert keel("models", "list", "--json").json() == {"ok": True, "models": []}
        first = _register(project, "flights", 0.71)
        second = _register(project, "flights", 0.74, alias="staging")
        _register(project, "churn", 0.9)

    listed = keel("models", "list", "--json")
    assert listed.code == 0, listed.err
    assert [
        (m["name"], m["latest_version"], m["versions"], m["aliases"])
        for m in listed.json()["models"]
    ] == [("churn", 1, 1, {"candidate": 1}), ("flights", 2, 2, {"candidate": 1, "staging": 2})]
    text = keel("models", "list").out
    assert "flights" in text and "candidate -> 1, staging -> 2" in text

    shown = keel("models", "show", "flights", "--json")
    assert shown.code == 0, shown.err
    model = shown.json()["model"]
    assert model["aliases"] == {"candidate": 1, "staging": 2}
    assert [(v["version"], v["run_id"], v["metrics"], v["aliases"]) for v in model["versions"]] == [
        (2, second.run_id, {"auc": 0.74}, ["staging"]),
        (1, first.run_id, {"auc": 0.71}, ["candidate"]),
    ]
    human = keel("models", "show", "flights").out
    assert first.run_id in human and "auc=0.74" in human and "staging" in human

    for ref, number in (("flights@1", 1), ("flights@staging", 2), ("flights@latest", 2)):
        one = keel("models", "show", ref, "--json")
        assert one.code == 0, one.err
        version = one.json()["version"]
        assert version["version"] == number and version["ref"] == f"flights@{number}"
    version = keel("models", "show", "flights@candidate", "--json").json()["version"]
    assert version["run_id"] == first.run_id and version["package"] == str(first.package)
    assert version["inference_contract"] == CONTRACT
    assert version["aliases"] == ["candidate"] and version["created_by"] == "ana"
    full = keel("models", "show", "flights@1").out
    assert "flights@1" in full and "distance" in full and "carrier" in full
    assert "(nullable)" in full and "prediction" in full and "auc = 0.71" in full


def test_models_show_errors(keel: Keel, tmp_path: Path) -> None:
    with _project(tmp_path) as project:
        _register(project, "flights", 0.7)
    missing = keel("models", "show", "ghost", "--json")
    assert missing.code == 3
    assert missing.json()["error"]["code"] == "not_found"
    assert "flights" in missing.json()["error"]["message"]
    assert keel("models", "show", "flights@7").code == 3
    no_alias = keel("models", "show", "flights@production")
    assert no_alias.code == 3 and "candidate -> 1" in no_alias.err
    for bad in ("Flights", "flights@", "flights@0", "flights@Prod", "@1", "flights@1@2"):
        malformed = keel("models", "show", bad, "--json")
        assert malformed.code == 2, bad
        assert malformed.json()["error"]["code"] == "config_error"
