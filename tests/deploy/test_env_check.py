"""`keel env check MODEL@VERSION`: every difference from the recorded lock, one per line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tests.deploy.support import MODEL, lock_of, replace_recorded_lock
from tests.fixtures.cli import Keel


def test_the_environment_that_trained_the_model_matches(keel: Keel, trained_template: Path) -> None:
    # The fixture trained in this very interpreter: its lock is this environment.
    result = keel("-C", trained_template, "env", "check", f"{MODEL}@2")
    assert result.code == 0, result.out + result.err
    assert result.out.startswith(f"{MODEL}@2: this environment is the recorded one")

    result = keel("-C", trained_template, "env", "check", f"{MODEL}@2", "--json")
    assert result.code == 0
    document = result.json()
    assert document["ok"] is True and document["differences"] == []
    assert document["recorded"]["digest"] == str(lock_of(trained_template, f"{MODEL}@2").digest)


def test_an_edited_lock_reports_every_difference(keel: Keel, release_project: Path) -> None:
    real = lock_of(release_project, f"{MODEL}@1")
    numpy = real.package_versions["numpy"]
    packages = {**real.package_versions, "numpy": "1.0.0", "left-pad": "1.3.0"}
    del packages["pyyaml"]
    replace_recorded_lock(
        release_project,
        f"{MODEL}@1",
        lambda lock: dataclasses.replace(
            lock, python_version="3.11.0", packages=tuple(sorted(packages.items()))
        ),
    )

    result = keel("-C", release_project, "env", "check", f"{MODEL}@1")
    assert result.code == 1, result.out + result.err
    lines = result.out.splitlines()
    assert lines[0].startswith(f"{MODEL}@1: 4 differences from the environment run ")
    assert sorted(lines[1:]) == sorted(
        [
            f"python version: 3.11.0 recorded, {real.python_version} now",
            f"package numpy: 1.0.0 recorded, {numpy} now",
            "package left-pad: 1.3.0 recorded, not installed now",
            f"package pyyaml: {real.package_versions['pyyaml']} installed now, "
            "absent when recorded",
        ]
    )

    result = keel("-C", release_project, "env", "check", f"{MODEL}@1", "--json")
    assert result.code == 1
    document = result.json()
    assert document["ok"] is False
    found = {
        (d["kind"], d["change"], d["name"], d["recorded"], d["current"])
        for d in document["differences"]
    }
    assert found == {
        ("python", "changed", "version", "3.11.0", real.python_version),
        ("package", "changed", "numpy", "1.0.0", numpy),
        ("package", "removed", "left-pad", "1.3.0", None),
        ("package", "added", "pyyaml", None, real.package_versions["pyyaml"]),
    }
    # Other versions' locks are untouched.
    assert keel("-C", release_project, "env", "check", f"{MODEL}@2").code == 0


def test_an_unknown_version_is_not_found(keel: Keel, trained_template: Path) -> None:
    result = keel("-C", trained_template, "env", "check", f"{MODEL}@9")
    assert result.code == 3
    assert f"model {MODEL} has no version 9" in result.err

    result = keel("-C", trained_template, "env", "check", "no-such-model@1", "--json")
    assert result.code == 3
    assert result.json()["error"]["code"] == "not_found"


def test_a_malformed_reference_is_a_usage_error(keel: Keel, trained_template: Path) -> None:
    result = keel("-C", trained_template, "env", "check", f"{MODEL}@-1")
    assert result.code == 2
