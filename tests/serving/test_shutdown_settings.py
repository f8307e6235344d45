"""The settings of a bounded shutdown and of the log's durability: checked when keel.yaml is
read, and carried into the Kubernetes manifests."""

from __future__ import annotations

import pytest

from keel.deploy.kubernetes import grace_period
from keel.deploy.source import DeploySource
from keel.errors import ConfigError
from keel.spec import parse_spec


def _spec(serving: str) -> str:
    return f"name: m\nserving:\n{serving}"


@pytest.mark.parametrize(
    ("serving", "key"),
    [
        ("  shutdown_timeout: 0s\n", "serving.shutdown_timeout"),
        ("  shutdown_timeout: -5s\n", "serving.shutdown_timeout"),
        ("  log:\n    durability: always\n", "serving.log.durability"),
        ("  log:\n    flush_interval: 0s\n", "serving.log.flush_interval"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(serving: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_spec(_spec(serving))
    assert any(path == key for path, _ in caught.value.problems), caught.value.problems


def test_defaults_fit_kubernetes_grace_period() -> None:
    spec = parse_spec("name: m\n")
    assert spec.serving.shutdown_timeout.total_seconds() == 20
    assert spec.serving.log.durability in ("buffered", "durable")


@pytest.mark.parametrize(("setting", "grace"), [(None, 30), ("45s", 55), ("2.5s", 13)])
def test_manifests_give_shutdown_timeout_and_a_margin(setting: str | None, grace: int) -> None:
    text = "name: m\n" + (f"serving:\n  shutdown_timeout: {setting}\n" if setting else "")
    source = DeploySource(
        version=None,  # type: ignore[arg-type]
        lock=None,  # type: ignore[arg-type]
        git_commit=None,
        project_files={"keel.yaml": text.encode()},
    )
    assert grace_period(source) == grace
