"""The metadata suite runs every test against SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.metadata import SqlMetadataStore, open_metadata_store


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'keel' / 'metadata.db'}"
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url


@pytest.fixture
def store(metadata_url: str) -> Iterator[SqlMetadataStore]:
    """A store migrated to head."""
    opened = open_metadata_store(metadata_url)
    try:
        yield opened
    finally:
        opened.close()
