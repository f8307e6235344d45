"""`keel deploy render docker`: images pinned to the version's recorded environment, built
from a complete context, passing hadolint."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from keel.deploy.container import KEYS_DIR, PORT, READY_PATH, UID
from tests.deploy.support import GRPC_ARGS, MODEL, SERVE_ARGS, lock_of, replace_recorded_lock
from tests.fixtures.cli import Keel
from tests.serving.support import open_project, set_alias

HADOLINT = Path(sys.executable).with_name("hadolint")
DOCKERFILES = ("Dockerfile.serve", "Dockerfile.train")


@pytest.fixture
def rendered(keel: Keel, trained_template: Path, tmp_path: Path) -> Path:
    out = tmp_path / "docker"
    result = keel(
        "-C", trained_template, "deploy", "render", "docker", "--model", f"{MODEL}@2", "-o", out
    )
    assert result.code == 0, result.err
    return out


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    pairs = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def test_requirements_lock_pins_every_recorded_package(
    rendered: Path, trained_template: Path
) -> None:
    lock = lock_of(trained_template, f"{MODEL}@2")
    pinned: dict[str, str] = {}
    for line in (rendered / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and name and version and " " not in line, line  # exact pins, nothing else
        assert name not in pinned, f"{name} pinned twice"
        pinned[name] = version
    assert pinned == lock.package_versions
    assert len(pinned) == len(lock.packages) > 50  # the whole environment, not a summary
    assert pinned["numpy"] == lock.package_versions["numpy"]
    assert "scikit-learn" in pinned and "keelml" in pinned


def test_both_images_install_the_lock_on_the_recorded_python(
    rendered: Path, trained_template: Path
) -> None:
    lock = lock_of(trained_template, f"{MODEL}@2")
    for name in DOCKERFILES:
        steps = _instructions(rendered / name)
        assert steps[0] == ("FROM", f"python:{lock.python_version}-slim")
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim", steps[0][1])  # a patch release
        runs = [args for keyword, args in steps if keyword == "RUN"]
        assert any(
            "pip install --no-cache-dir --no-deps --requirement /tmp/requirements.lock" in run
            for run in runs
        ), runs
        # The base image's packaging tools the run did not have are removed (pip last).
        removed = re.search(r"pip uninstall --yes ([\w -]+?) &&", " ".join(runs))
        unrecorded = [t for t in ("wheel", "setuptools", "pip") if t not in lock.package_versions]
        assert (removed.group(1).split() if removed else []) == unrecorded
        labels = next(args for keyword, args in steps if keyword == "LABEL")
        assert f'keel.environment-lock="{lock.digest}"' in labels
        assert f'keel.model="{MODEL}@2"' in labels


def test_serving_image_runs_keel_serve_as_a_user_with_a_healthcheck(
    rendered: Path, trained_template: Path
) -> None:
    steps = dict(_instructions(rendered / "Dockerfile.serve"))
    assert steps["USER"] == f"{UID}:{UID}"
    assert json.loads(steps["ENTRYPOINT"]) == ["keel"]
    # The run's environment had the grpc extra: the image serves gRPC on 8081 too.
    assert {"grpcio", "protobuf"} <= lock_of(trained_template, f"{MODEL}@2").package_versions.keys()
    assert json.loads(steps["CMD"]) == GRPC_ARGS
    assert steps["EXPOSE"] == f"{PORT} 8081"
    assert f"http://127.0.0.1:{PORT}{READY_PATH}" in steps["HEALTHCHECK"]


def test_an_environment_without_grpc_serves_http_only(
    keel: Keel, trained_template: Path, tmp_path: Path
) -> None:
    # The image installs the recorded environment and nothing else: without grpcio,
    # `--grpc-port` would fail to start, so neither the image nor the manifests ask for it.
    folder = tmp_path / "flights"
    shutil.copytree(trained_template, folder)
    replace_recorded_lock(
        folder,
        f"{MODEL}@2",
        lambda lock: dataclasses.replace(
            lock, packages=tuple(p for p in lock.packages if p[0] != "grpcio")
        ),
    )
    for target in ("docker", "kubernetes"):
        out = tmp_path / target
        result = keel("-C", folder, "deploy", "render", target, "--model", f"{MODEL}@2", "-o", out)
        assert result.code == 0, result.err
    steps = dict(_instructions(tmp_path / "docker" / "Dockerfile.serve"))
    assert json.loads(steps["CMD"]) == SERVE_ARGS and steps["EXPOSE"] == str(PORT)
    deployment = yaml.safe_load((tmp_path / "kubernetes" / "deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == SERVE_ARGS
    assert [p["name"] for p in container["ports"]] == ["http"]
    service = yaml.safe_load((tmp_path / "kubernetes" / "service.yaml").read_text())
    assert [p["name"] for p in service["spec"]["ports"]] == ["http"]


def test_training_image_reproduces_the_version_as_a_user(rendered: Path) -> None:
    steps = dict(_instructions(rendered / "Dockerfile.train"))
    assert steps["USER"] == f"{UID}:{UID}"
    assert json.loads(steps["ENTRYPOINT"]) == ["keel"]
    assert json.loads(steps["CMD"]) == ["reproduce", f"{MODEL}@2"]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_finds_nothing(rendered: Path, name: str) -> None:
    completed = subprocess.run(
        [HADOLINT, "--no-color", "--failure-threshold", "style", rendered / name],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout == ""  # not even an info-level finding
    assert "hadolint ignore" not in (rendered / name).read_text(encoding="utf-8")


def test_build_context_holds_what_the_dockerfiles_copy(
    rendered: Path, trained_template: Path
) -> None:
    for name in DOCKERFILES:
        for keyword, args in _instructions(rendered / name):
            if keyword == "COPY":
                source = args.split()[0]
                assert (rendered / source).exists(), f"{name} copies missing {source}"
    for path in ("keel.yaml", "features.py", "train.py", "contracts/raw.yaml"):
        assert (rendered / "project" / path).read_bytes() == (trained_template / path).read_bytes()
    assert not (rendered / "project" / ".keel").exists()  # the local store stays out
    assert not (rendered / "project" / "raw.parquet").exists()  # data comes from the store
    ignore = (rendered / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignore[1:4] == ["*", "!requirements.lock", "!project/"]


def test_images_look_for_keys_where_they_are_mounted_and_never_hold_one(
    rendered: Path, trained_template: Path
) -> None:
    """Both images read keel's keys from KEYS_DIR (a mounted Secret or volume), and the build
    context never lets a key in, wherever KEEL_KEYS had put it in the project."""
    for name in DOCKERFILES:
        text = (rendered / name).read_text(encoding="utf-8")
        assert f"KEEL_KEYS={KEYS_DIR}" in text
        assert "signing" not in text.replace("KEEL_KEYS", "")
    ignore = (rendered / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert {"**/signing.key", "**/secrets.key"} <= set(ignore)
    assert (trained_template / ".keel" / "keys" / "signing.key").is_file()
    assert not [p for p in rendered.rglob("*.key")]


def test_an_alias_renders_the_version_it_holds(
    keel: Keel, release_project: Path, tmp_path: Path
) -> None:
    with open_project(release_project) as project:
        set_alias(project, "production", 3)
    out = tmp_path / "docker"
    result = keel(
        "-C",
        release_project,
        "deploy",
        "render",
        "docker",
        "--model",
        f"{MODEL}@production",
        "-o",
        out,
        "--json",
    )
    assert result.code == 0, result.out
    assert result.json()["model"] == f"{MODEL}@3"
    assert f'CMD ["reproduce", "{MODEL}@3"]' in (out / "Dockerfile.train").read_text()


def test_code_that_differs_from_the_run_is_noted(
    keel: Keel, release_project: Path, tmp_path: Path
) -> None:
    with (release_project / "features.py").open("a") as features:
        features.write("\n# edited after training\n")
    result = keel(
        "-C",
        release_project,
        "deploy",
        "render",
        "docker",
        "--model",
        f"{MODEL}@1",
        "-o",
        tmp_path / "docker",
        "--json",
    )
    assert result.code == 0, result.out
    (note,) = result.json()["notes"]
    assert "code differs from run" in note and "would not rebuild" in note
    # The image is still rendered from the working tree, which is what the note warns about.
    assert (tmp_path / "docker" / "project" / "features.py").read_bytes() == (
        release_project / "features.py"
    ).read_bytes()
