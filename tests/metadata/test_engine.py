"""URLs: which schemes are accepted, and that passwords never show."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from keel.errors import ConfigError, DependencyMissing
from keel.metadata.sql.engine import create_metadata_engine, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://keel:s3cret@db.example:5432/keel",
            "postgresql://keel:***@db.example:5432/keel",
        ),
        ("postgresql+psycopg://keel@db/keel", "postgresql+psycopg://keel@db/keel"),
        ("postgresql://keel@db/keel?password=s3cret", "postgresql://keel@db/keel?password=***"),
        ("sqlite:////tmp/keel.db", "sqlite:////tmp/keel.db"),
        ("not a url://keel:s3cret@host", "not a url://keel:***@host"),
    ],
)
def test_redact_url_hides_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "s3cret" not in redact_url(url)


@pytest.mark.parametrize("url", ["mysql://keel@db/keel", "s3://bucket/keel.db"])
def test_an_unknown_scheme_names_the_setting(url: str) -> None:
    with pytest.raises(ConfigError, match="KEEL_DB_URL") as caught:
        create_metadata_engine(url)
    assert caught.value.problems[0][0] == "KEEL_DB_URL"


def test_garbage_and_in_memory_urls_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="KEEL_DB_URL"):
        create_metadata_engine("no scheme at all")
    with pytest.raises(ConfigError, match="in-memory"):
        create_metadata_engine("sqlite://")


def test_a_plain_postgresql_url_uses_psycopg_3() -> None:
    engine = create_metadata_engine("postgresql://keel:s3cret@127.0.0.1:1/keel")
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


def test_other_postgresql_drivers_are_refused() -> None:
    with pytest.raises(ConfigError, match="psycopg2"):
        create_metadata_engine("postgresql+psycopg2://keel@db/keel")


def test_a_missing_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # makes `import psycopg` fail
    with pytest.raises(DependencyMissing) as caught:
        create_metadata_engine("postgresql://keel@db/keel")
    assert caught.value.extra == "postgres"
    assert caught.value.hint == "pip install 'keelml[postgres]'"


def test_sqlite_connections_are_set_up_for_several_processes(tmp_path: Path) -> None:
    engine = create_metadata_engine(f"sqlite:///{tmp_path / 'new' / 'folder' / 'keel.db'}")
    try:
        with engine.connect() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar_one()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        engine.dispose()
    # synchronous 2 is FULL: a commit is on disk before it is acknowledged.
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "busy_timeout": 30_000,
    }
