"""Choosing a backend from the KEEL_ARTIFACTS URL."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from keel.artifacts import LocalArtifactStore, S3ArtifactStore, open_artifact_store
from keel.errors import ConfigError, DependencyMissing
from tests.fixtures.s3 import S3Server


def test_a_plain_path_or_file_url_is_a_local_folder(tmp_path: Path) -> None:
    by_path = open_artifact_store(str(tmp_path / "a"))
    by_url = open_artifact_store((tmp_path / "b with space").as_uri())

    assert isinstance(by_path, LocalArtifactStore)
    assert isinstance(by_url, LocalArtifactStore)
    assert by_path.root == tmp_path / "a"
    assert by_url.root == tmp_path / "b with space"
    assert (tmp_path / "a" / "objects").is_dir()  # opening creates the folder


def test_the_store_url_reopens_the_same_store(tmp_path: Path) -> None:
    store = open_artifact_store(str(tmp_path))
    digest = store.put_bytes(b"x").digest

    assert open_artifact_store(store.url).exists(digest)


@pytest.mark.parametrize("url", ["gs://bucket/x", "ftp://host/path", "HTTP://h/p"])
def test_unknown_scheme_names_the_setting_and_the_known_schemes(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_artifact_store(url)

    message = str(caught.value)
    assert "KEEL_ARTIFACTS" in message
    assert "file://" in message and "s3://" in message
    assert caught.value.problems[0][0] == "KEEL_ARTIFACTS"


@pytest.mark.parametrize("url", ["", "   ", "file://otherhost/path", "s3://"])
def test_malformed_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match="KEEL_ARTIFACTS"):
        open_artifact_store(url)


def test_unknown_s3_option_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown S3 options \\['colour'\\]"):
        open_artifact_store("s3://bucket/p", {"colour": "blue"})


def test_missing_s3fs_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # makes `import s3fs` fail

    with pytest.raises(DependencyMissing) as caught:
        open_artifact_store("s3://bucket/prefix")

    assert caught.value.extra == "s3"
    assert caught.value.hint == "pip install 'keelml[s3]'"


@pytest.mark.s3
def test_s3_with_options(s3_server: S3Server) -> None:
    store = open_artifact_store(s3_server.url(), s3_server.options())

    assert isinstance(store, S3ArtifactStore)
    assert store.read_bytes(store.put_bytes(b"hello").digest) == b"hello"


@pytest.mark.s3
def test_s3_from_the_standard_aws_environment(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_server.region)

    store = open_artifact_store(s3_server.url())

    assert store.url.startswith(f"s3://{s3_server.bucket}/t-")
    assert store.read_bytes(store.put_bytes(b"from env").digest) == b"from env"
