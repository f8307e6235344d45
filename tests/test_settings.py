"""Settings: environment over keel.yaml over defaults; frozen; paths resolved."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from keel.errors import ConfigError
from keel.settings import Settings, find_project_dir
from keel.spec import parse_spec


def test_defaults_live_in_the_project(tmp_path: Path) -> None:
    settings = Settings.load(tmp_path, parse_spec("name: x\n"), {"USER": "ana"})
    assert settings.db_url == f"sqlite:///{tmp_path.resolve()}/.keel/keel.db"
    assert settings.artifacts_url == str(tmp_path.resolve() / ".keel" / "artifacts")
    assert settings.user  # the OS user
    assert settings.debug is False


def test_environment_overrides_spec(tmp_path: Path) -> None:
    spec = parse_spec("name: x\nstorage: {db_url: 'sqlite:///meta.db', artifacts: store}\n")
    from_spec = Settings.load(tmp_path, spec, {})
    assert from_spec.db_url == f"sqlite:///{tmp_path.resolve()}/meta.db"
    assert from_spec.artifacts_url == str(tmp_path.resolve() / "store")
    env = {
        "KEEL_DB_URL": "postgresql://keel@127.0.0.1/keel",
        "KEEL_ARTIFACTS": "s3://bucket/prefix",
        "KEEL_USER": "reviewer",
        "KEEL_DEBUG": "1",
    }
    from_env = Settings.load(tmp_path, spec, env)
    assert from_env.db_url == "postgresql://keel@127.0.0.1/keel"
    assert from_env.artifacts_url == "s3://bucket/prefix"
    assert from_env.user == "reviewer"
    assert from_env.debug is True


def test_settings_are_immutable(tmp_path: Path) -> None:
    settings = Settings.load(tmp_path, parse_spec("name: x\n"), {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.user = "someone-else"  # type: ignore[misc]


def test_unknown_keel_variables_are_reported(tmp_path: Path) -> None:
    env = {"KEEL_DB_ULR": "x", "KEEL_TEST_POSTGRES_URL": "y", "KEEL_USER": "a"}
    settings = Settings.load(tmp_path, parse_spec("name: x\n"), env)
    assert settings.unknown_variables == ("KEEL_DB_ULR",)


def test_find_project_dir_walks_up(tmp_path: Path) -> None:
    (tmp_path / "keel.yaml").write_text("name: x\n")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert find_project_dir(nested, {}) == tmp_path.resolve()
    assert find_project_dir(Path("/"), {"KEEL_PROJECT": str(tmp_path)}) == tmp_path.resolve()


def test_no_project_is_a_config_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        find_project_dir(tmp_path, {})
    assert "no keel.yaml" in str(caught.value)
    assert caught.value.hint is not None and "keel init" in caught.value.hint
