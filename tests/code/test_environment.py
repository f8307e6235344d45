"""Environment capture: what the lock records, that it is stable, and how two locks differ."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import platform
import sys

from keel.code.environment import (
    EnvironmentLock,
    capture_environment,
    diff_environments,
    normalise_name,
)


def test_records_the_running_interpreter() -> None:
    lock = capture_environment()
    assert lock.python_version == platform.python_version()
    assert lock.python_version.startswith(f"{sys.version_info.major}.{sys.version_info.minor}.")
    assert lock.python_implementation == platform.python_implementation()
    assert lock.cpu_count >= 1
    assert lock.cpu_model


def test_records_installed_distributions_with_normalised_names() -> None:
    versions = capture_environment().package_versions
    assert versions["scikit-learn"] == importlib.metadata.version("scikit-learn")
    assert versions["pyarrow"] == importlib.metadata.version("pyarrow")
    assert all(name == normalise_name(name) for name in versions)
    names = [name for name, _ in capture_environment().packages]
    assert names == sorted(names)


def test_digest_is_stable_and_json_round_trips() -> None:
    first, second = capture_environment(), capture_environment()
    assert first.digest == second.digest
    assert first.to_json() == second.to_json()
    document = json.loads(first.to_json())
    assert document["kind"] == "keel/environment"
    assert document["version"] == 1
    assert "scikit-learn==" + first.package_versions["scikit-learn"] in document["packages"]
    restored = EnvironmentLock.from_json(first.to_json())
    assert restored == first
    assert restored.digest == first.digest


def test_diff_lists_added_removed_and_changed_packages() -> None:
    recorded = dataclasses.replace(
        capture_environment(),
        packages=(("numpy", "2.0.0"), ("old-lib", "1.0"), ("same", "3.1")),
    )
    current = dataclasses.replace(
        recorded,
        packages=(("new-lib", "0.2"), ("numpy", "2.1.0"), ("same", "3.1")),
        python_version="3.99.0",
    )
    differences = diff_environments(recorded, current)
    by_name = {(d.kind, d.name): d for d in differences}
    assert by_name[("package", "new-lib")].change == "added"
    assert by_name[("package", "old-lib")].change == "removed"
    changed = by_name[("package", "numpy")]
    assert (changed.change, changed.recorded, changed.current) == ("changed", "2.0.0", "2.1.0")
    assert by_name[("python", "version")].current == "3.99.0"
    assert ("package", "same") not in by_name
    assert "numpy: 2.0.0 recorded, 2.1.0 now" in str(changed)


def test_no_differences_against_itself() -> None:
    lock = capture_environment()
    assert diff_environments(lock, lock) == []
