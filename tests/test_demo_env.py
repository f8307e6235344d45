"""`keel demo` honours the stores the environment names, as every other command does: with
KEEL_DB_URL set it records its story in that database, and refuses one that already holds a
project's history."""

from __future__ import annotations

from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from keel.demo import MODEL, OWNER
from keel.project import Project
from tests.fixtures.cli import Keel

pytestmark = [pytest.mark.postgres, pytest.mark.slow]  # keel demo on PostgreSQL: ~17 s


def test_keel_demo_records_its_story_in_the_database_keel_db_url_names(
    keel: Keel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_postgres_url: str
) -> None:
    monkeypatch.setenv("KEEL_DB_URL", fresh_postgres_url)
    folder = tmp_path / "demo"

    # One training thread: OpenMP's threads fight over a small, shared machine.
    with threadpool_limits(1):
        result = keel("demo", folder)

    assert result.code == 0, result.err[-2000:]
    assert "(KEEL_DB_URL from the environment)" in result.out
    assert not (folder / ".keel" / "keel.db").exists()  # nothing went to the default SQLite
    env = {"KEEL_DB_URL": fresh_postgres_url, "KEEL_USER": OWNER}
    with Project.open(folder, env=env) as project:
        assert project.metadata.backend == "postgresql"
        assert project.metadata.models.get(MODEL, 1).model == MODEL
        kinds = {event.kind for event in project.metadata.audit.events(after=0)}
    assert {"model.registered", "alias.moved", "release.approved"} <= kinds
    assert keel("-C", folder, "audit-log", "verify").code == 0


def test_keel_demo_refuses_a_database_holding_a_project_and_writes_nothing(
    keel: Keel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_postgres_url: str
) -> None:
    monkeypatch.setenv("KEEL_DB_URL", fresh_postgres_url)
    assert keel("init").code == 0
    assert keel("users", "add", "bo", "--role", "viewer").code == 0
    folder = tmp_path / "demo"

    result = keel("demo", folder)

    assert result.code == 2, result.out + result.err
    assert "KEEL_DB_URL" in result.err and "already holds a keel project's history" in result.err
    assert not folder.exists()
