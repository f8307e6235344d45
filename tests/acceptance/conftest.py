"""The `database` fixture of the acceptance tests: each runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from tests.fixtures.cli import Keel


@pytest.fixture
def database(request: pytest.FixtureRequest, keel: Keel, monkeypatch: pytest.MonkeyPatch) -> str:
    """The metadata store named by the test's parameter (`DATABASES`): KEEL_DB_URL set to a
    fresh PostgreSQL database, or the project's own SQLite file. Training runs on one thread:
    CI machines are small and shared, and OpenMP's threads fight over them."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    name: str = request.param
    if name == "postgresql":
        monkeypatch.setenv("KEEL_DB_URL", request.getfixturevalue("fresh_postgres_url"))
    return name
