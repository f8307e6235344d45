"""Bad input to `keel deploy render` changes nothing: no folder appears, an existing one
keeps its bytes, and a failure half-way leaves no partial render behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from keel.deploy import folder as folder_module
from tests.deploy.support import MODEL, rendered_files
from tests.fixtures.cli import Keel, Result

TARGETS = ("docker", "kubernetes", "kserve")


@pytest.fixture(scope="module")
def project(trained_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained project: opening the shared template itself creates and removes
    SQLite's -wal and -shm files under the feet of other workers copying it."""
    folder = tmp_path_factory.mktemp("bad-input") / "flights"
    shutil.copytree(trained_template, folder)
    return folder


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir()) if path.parent.exists() else []


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("ref", [f"{MODEL}@9", "no-such-model@1", f"{MODEL}@staging"])
def test_an_unknown_model_or_version_exits_3_and_writes_nothing(
    keel: Keel, project: Path, tmp_path: Path, target: str, ref: str
) -> None:
    out = tmp_path / "out" / "deploy"
    result = keel("-C", project, "deploy", "render", target, "--model", ref, "-o", out)
    assert result.code == 3, result.err
    assert result.err.startswith("error: "), result.err
    assert not out.exists() and _siblings(out) == []

    result = keel("-C", project, "deploy", "render", target, "--model", ref, "-o", out, "--json")
    assert result.code == 3
    assert result.json()["error"]["code"] == "not_found"
    assert not out.exists()


@pytest.mark.parametrize(
    "args",
    [
        ("deploy", "render", "docker", "--model", f"{MODEL}@-1"),  # malformed reference
        ("deploy", "render", "helm", "--model", f"{MODEL}@1"),  # unknown target
        ("deploy", "render", "kubernetes", "--model", f"{MODEL}@1", "--replicas", "0"),
        ("deploy", "render", "kubernetes", "--model", f"{MODEL}@1", "--replicas", "two"),
    ],
)
def test_usage_errors_exit_2_and_write_nothing(
    keel: Keel, project: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    out = tmp_path / "deploy"
    result = keel("-C", project, *args, "-o", out)
    assert result.code == 2, result.err
    assert not out.exists()


def test_a_folder_that_is_not_empty_is_refused_unchanged(
    keel: Keel, project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "deploy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    before = rendered_files(out)
    for extra in ((), ("--force",)):  # --force replaces only what a render wrote
        result = keel(
            "-C",
            project,
            "deploy",
            "render",
            "kubernetes",
            "--model",
            f"{MODEL}@1",
            "-o",
            out,
            *extra,
        )
        assert result.code == 4, result.err
        assert "nothing was written" in result.err or "--force replaces only" in result.err
        assert rendered_files(out) == before
    assert _siblings(out) == ["deploy"]  # no staging folder left behind


def test_force_replaces_an_earlier_render_whole(keel: Keel, project: Path, tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    assert (
        keel("-C", project, "deploy", "render", "docker", "--model", f"{MODEL}@1", "-o", out).code
        == 0
    )
    assert (out / "Dockerfile.serve").exists()
    result = keel(
        "-C",
        project,
        "deploy",
        "render",
        "kubernetes",
        "--model",
        f"{MODEL}@2",
        "-o",
        out,
        "--force",
    )
    assert result.code == 0, result.err
    files = rendered_files(out)
    assert sorted(files) == [
        ".keel-render",
        "deployment.yaml",
        "hpa.yaml",
        "pdb.yaml",
        "service.yaml",
    ]  # nothing of the docker render is left
    marker = json.loads(files[".keel-render"])
    assert (marker["target"], marker["model"]) == ("kubernetes", f"{MODEL}@2")
    assert _siblings(out) == ["deploy"]


def _render(keel: Keel, project: Path, target: str, out: Path, *extra: str) -> Result:
    return keel(
        "-C", project, "deploy", "render", target, "--model", f"{MODEL}@1", "-o", out, *extra
    )


def test_force_keeps_the_files_the_user_added_to_a_render(
    keel: Keel, project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "deploy"
    assert _render(keel, project, "kubernetes", out).code == 0
    kustomization = b"resources:\n  - deployment.yaml\n  - service.yaml\n"
    (out / "kustomization.yaml").write_bytes(kustomization)
    (out / "overlays" / "prod").mkdir(parents=True)
    (out / "overlays" / "prod" / "patch.yaml").write_bytes(b"replicas: 6\n")
    (out / "deployment.yaml").write_bytes(b"edited by hand\n")  # keel's own: re-rendered

    result = _render(keel, project, "kubernetes", out, "--force", "--json")

    assert result.code == 0, result.err
    assert result.json()["kept"] == ["kustomization.yaml", "overlays/prod/patch.yaml"]
    files = rendered_files(out)
    assert files["kustomization.yaml"] == kustomization
    assert files["overlays/prod/patch.yaml"] == b"replicas: 6\n"
    assert files["deployment.yaml"] != b"edited by hand\n"
    assert json.loads(files[".keel-render"])["files"] == [
        "deployment.yaml",
        "hpa.yaml",
        "pdb.yaml",
        "service.yaml",
    ]  # the user's files stay theirs: a later --force keeps them again
    again = _render(keel, project, "kserve", out, "--force")
    assert again.code == 0, again.err
    assert "kept 2 files of yours unchanged\n  kustomization.yaml" in again.out
    assert sorted(rendered_files(out)) == [
        ".keel-render",
        "inferenceservice.yaml",
        "kustomization.yaml",
        "overlays/prod/patch.yaml",
    ]
    assert _siblings(out) == ["deploy"]


def test_force_refuses_to_overwrite_a_user_file_a_render_would_write(
    keel: Keel, project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "deploy"
    assert _render(keel, project, "docker", out).code == 0
    (out / "service.yaml").write_bytes(b"my own service\n")  # not written by the docker render
    before = rendered_files(out)

    result = _render(keel, project, "kubernetes", out, "--force")

    assert result.code == 4, result.err
    assert "holds service.yaml of your own" in result.err and "nothing was written" in result.err
    assert rendered_files(out) == before
    assert _siblings(out) == ["deploy"]


def test_an_empty_folder_is_used(keel: Keel, project: Path, tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    out.mkdir()
    result = keel("-C", project, "deploy", "render", "kserve", "--model", f"{MODEL}@1", "-o", out)
    assert result.code == 0, result.err
    assert (out / "inferenceservice.yaml").is_file()


def test_a_failure_half_way_leaves_nothing(
    keel: Keel, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "deploy"
    assert (
        keel("-C", project, "deploy", "render", "kserve", "--model", f"{MODEL}@1", "-o", out).code
        == 0
    )
    before = rendered_files(out)
    written: list[str] = []
    real = folder_module._check_path

    def fail_on_the_third(path: str) -> object:
        written.append(path)
        if len(written) == 3:
            raise OSError(28, "No space left on device")
        return real(path)

    monkeypatch.setattr(folder_module, "_check_path", fail_on_the_third)
    result = keel(
        "-C",
        project,
        "deploy",
        "render",
        "docker",
        "--model",
        f"{MODEL}@1",
        "-o",
        out,
        "--force",
    )
    assert result.code == 70
    assert len(written) == 3
    assert rendered_files(out) == before  # the earlier render, whole
    assert _siblings(out) == ["deploy"]


@pytest.mark.parametrize("target", TARGETS)
def test_the_same_input_gives_the_same_bytes(
    keel: Keel, project: Path, tmp_path: Path, target: str
) -> None:
    renders = []
    for name in ("first", "second"):
        result = keel(
            "-C",
            project,
            "deploy",
            "render",
            target,
            "--model",
            f"{MODEL}@2",
            "-o",
            tmp_path / name,
        )
        assert result.code == 0, result.err
        renders.append(rendered_files(tmp_path / name))
    assert renders[0] == renders[1]
    text = b"".join(renders[0].values())
    assert str(tmp_path).encode() not in text and str(project).encode() not in text


def test_a_failed_swap_keeps_the_earlier_render(
    keel: Keel, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "deploy"
    args = ("-C", project, "deploy", "render", "kserve", "--model", f"{MODEL}@1")
    assert keel(*args, "-o", out).code == 0
    before = rendered_files(out)
    real_rename = Path.rename

    def refuse_the_new_folder(self: Path, target: Path) -> Path:
        if self.name.startswith(".deploy.new-"):
            raise OSError(5, "Input/output error")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", refuse_the_new_folder)
    assert keel(*args, "--replicas", "5", "-o", out, "--force").code == 70
    assert rendered_files(out) == before
    assert _siblings(out) == ["deploy"]
