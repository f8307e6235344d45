"""The same commands on the at-scale backends: PostgreSQL metadata and S3 artifacts."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.cli.conftest import Keel
from tests.fixtures.s3 import S3Server


@pytest.fixture
def scaled(
    keel: Keel, monkeypatch: pytest.MonkeyPatch, fresh_postgres_url: str, s3_server: S3Server
) -> Keel:
    """A project whose settings point at PostgreSQL and S3 through KEEL_* variables."""
    assert keel("init").code == 0
    monkeypatch.setenv("KEEL_DB_URL", fresh_postgres_url)
    monkeypatch.setenv("KEEL_ARTIFACTS", s3_server.url())
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_server.region)
    return keel


def test_status_reports_postgres_and_s3(scaled: Keel) -> None:
    result = scaled("status", "--json")
    assert result.code == 0, result.out
    stores = result.json()["stores"]
    assert stores["metadata"]["backend"] == "postgresql" and stores["metadata"]["ok"]
    assert stores["artifacts"]["backend"] == "s3" and stores["artifacts"]["ok"]
    assert result.json()["schema"]["revision"] == result.json()["schema"]["head"]


def test_put_get_verify_gc_round_trip(scaled: Keel, tmp_path: Path) -> None:
    source = tmp_path / "payload.bin"
    source.write_bytes(os.urandom(300_000))
    put = scaled("artifacts", "put", source, "--holder", "test:one", "--json")
    assert put.code == 0, put.out + put.err
    digest = put.json()["digest"]
    loose = tmp_path / "loose.bin"
    loose.write_bytes(b"nobody holds me")
    assert scaled("artifacts", "put", loose).code == 0

    out = tmp_path / "back.bin"
    assert scaled("artifacts", "get", digest, out).code == 0
    assert out.read_bytes() == source.read_bytes()
    assert scaled("artifacts", "verify").code == 0

    time.sleep(2)  # S3 times have one-second resolution: let the loose object age past the grace
    gc = scaled("artifacts", "gc", "--grace", "1s", "--json")
    assert gc.code == 0
    listed = scaled("artifacts", "list", "--json").json()["artifacts"]
    assert [row["digest"] for row in listed] == [
        digest
    ]  # the loose object went, the held one stayed


def test_gc_dry_run_reports_what_a_real_run_deletes(keel: Keel, tmp_path: Path) -> None:
    assert keel("init").code == 0
    held = tmp_path / "held.bin"
    held.write_bytes(b"keep me")
    loose = tmp_path / "loose.bin"
    loose.write_bytes(b"nobody holds me")
    assert keel("artifacts", "put", held, "--holder", "test:held").code == 0
    assert keel("artifacts", "put", loose).code == 0
    time.sleep(1.5)  # let both objects age past the grace period
    dry = keel("artifacts", "gc", "--grace", "1s", "--dry-run", "--json").json()
    real = keel("artifacts", "gc", "--grace", "1s", "--json").json()
    assert dry["deleted"] == real["deleted"] and len(real["deleted"]) == 1
    assert dry["kept"] == real["kept"] == 1
    assert dry["freed_bytes"] == real["freed_bytes"] == len(b"nobody holds me")
