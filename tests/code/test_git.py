"""git_state against a real repository in tmp_path."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from keel.code.git import git_state

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git binary")


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    (root / "features.py").write_text("def build(x):\n    return x\n", encoding="utf-8")
    _git(root, "add", "features.py")
    _git(root, "commit", "-q", "-m", "first")
    return root


def test_clean_repository(repo: Path) -> None:
    state = git_state(repo)
    assert state is not None
    assert state.commit is not None and len(state.commit) == 40
    assert state.branch == "main"
    assert not state.dirty
    assert state.diff_digest is None


def test_dirty_repository_hashes_the_diff_and_untracked_files(repo: Path) -> None:
    (repo / "features.py").write_text("def build(x):\n    return x + 1\n", encoding="utf-8")
    first = git_state(repo)
    assert first is not None and first.dirty and first.diff_digest is not None
    (repo / "features.py").write_text("def build(x):\n    return x + 2\n", encoding="utf-8")
    second = git_state(repo)
    assert second is not None and second.diff_digest not in (None, first.diff_digest)
    (repo / "notes.py").write_text("A = 1\n", encoding="utf-8")
    third = git_state(repo)
    assert third is not None and third.diff_digest not in (None, second.diff_digest)
    assert third.commit == first.commit


def test_outside_a_repository_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Stop git's upward search at tmp_path, in case the temp folder sits inside a work tree.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    plain = tmp_path / "plain"
    plain.mkdir()
    assert git_state(plain) is None


def test_missing_git_binary_is_none(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert git_state(repo) is None
