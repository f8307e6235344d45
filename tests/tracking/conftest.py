"""Fixtures for the tracking tests: a migrated store, and a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.metadata import SqlMetadataStore, open_metadata_store


class FakeClock:
    """Monotonic seconds that only move when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlMetadataStore]:
    """A SQLite store migrated to head."""
    with open_metadata_store(f"sqlite:///{tmp_path / 'keel.db'}") as opened:
        yield opened


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlMetadataStore]:
    """A migrated store on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'keel.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    with open_metadata_store(url) as opened:
        yield opened
