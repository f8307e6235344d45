"""Promotion only to the aliases keel.yaml declares, and only of a version named explicitly:
a typo (`--to prod`) must not create an alias that no approval policy covers."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from keel.project import Project
from tests.fixtures.cli import Keel
from tests.fixtures.copies import ProjectCopies, run_keel
from tests.pipeline.test_user_code import FEATURES, SPEC, TRAIN, _raw

DECLARED = "candidate, staging, canary, production"


@pytest.fixture(params=["sqlite", "postgresql"])
def trained(
    request: pytest.FixtureRequest,
    keel: Keel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    project_copies: ProjectCopies,
) -> Path:
    """The toy project with v1 trained (and registered as candidate), on either store (a
    copy: trained once per run and store)."""
    db_url = None
    if request.param == "postgresql":
        db_url = request.getfixturevalue("fresh_postgres_url")
        monkeypatch.setenv("KEEL_DB_URL", db_url)
    return project_copies.copy(_train_v1, tmp_path, db_url)


def _train_v1(folder: Path, env: dict[str, str]) -> None:
    assert run_keel(folder, env, "init").code == 0
    (folder / "keel.yaml").write_text(SPEC)
    (folder / "features.py").write_text(FEATURES)
    (folder / "train.py").write_text(TRAIN)
    pq.write_table(_raw(), folder / "raw.parquet")
    trained = run_keel(folder, env, "train", "--json")
    assert trained.code == 0, trained.err
    assert trained.json()["model"]["version"] == 1


def _open(folder: Path) -> Project:
    """The project on the store the CLI used (KEEL_DB_URL when the test set it)."""
    env = {k: v for k, v in os.environ.items() if k.startswith("KEEL_")}
    return Project.open(folder, env={**env, "KEEL_USER": "ana"})


def _alias_events(folder: Path) -> list[str]:
    with _open(folder) as project:
        events = project.metadata.audit.events(
            model="toy", kinds=["alias.moved", "alias.rolled_back"]
        )
        return [f"{e.alias}->v{e.version}" for e in events]


def test_a_typo_in_the_alias_is_refused_and_nothing_is_recorded(keel: Keel, trained: Path) -> None:
    refused = keel("promote", "toy@1", "--to", "prod", "--json")
    assert refused.code == 2, refused.out
    error = refused.json()["error"]
    assert error["problems"][0]["field"] == "alias"
    assert f"release.aliases declares {DECLARED}; did you mean 'production'?" in error["message"]
    text = keel("promote", "toy@1", "--to", "prod")
    assert text.code == 2 and "alias 'prod' is not declared in keel.yaml" in text.err
    assert keel("rollback", "toy", "--alias", "prod", "--reason", "undo").code == 2
    with _open(trained) as project:
        assert project.metadata.releases.holder("toy", "prod") is None
        assert project.metadata.releases.requests() == []
    assert _alias_events(trained) == []

    # production, declared, still asks for its approval.
    pending = keel("promote", "toy@1", "--to", "production", "--json")
    assert pending.code == 8, pending.out
    assert pending.json()["outcome"] == "pending"


def test_an_alias_declared_in_keel_yaml_can_be_promoted_to(keel: Keel, trained: Path) -> None:
    spec = trained / "keel.yaml"
    spec.write_text(spec.read_text() + "release: {aliases: [production, blue]}\n")
    moved = keel("promote", "toy@1", "--to", "blue", "--json")
    assert moved.code == 0, moved.out + moved.err
    assert moved.json()["outcome"] == "promoted"
    # staging is a default alias, no longer declared once the project lists its own.
    refused = keel("promote", "toy@1", "--to", "staging")
    assert refused.code == 2 and "declares candidate, production, blue" in refused.err
    assert _alias_events(trained) == ["blue->v1"]


def test_promote_needs_an_explicit_version_or_alias(keel: Keel, trained: Path) -> None:
    spec = trained / "keel.yaml"
    spec.write_text(spec.read_text() + "release: {approvals: {required: 0}}\n")
    bare = keel("promote", "toy", "--to", "staging", "--json")
    assert bare.code == 2, bare.out
    assert (
        "'toy' names no version: promote toy@VERSION, toy@ALIAS or toy@latest"
        in (bare.json()["error"]["message"])
    )
    assert _alias_events(trained) == []
    # Each explicit form names v1: the first moves staging, the others find it there.
    codes = [keel("promote", ref, "--to", "staging").code for ref in ("toy@1", "toy@candidate")]
    assert [*codes, keel("promote", "toy@latest", "--to", "staging").code] == [0, 4, 4]
    assert _alias_events(trained) == ["staging->v1"]
