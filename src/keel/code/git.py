"""Where the user's code stands in git: `git_state` records the commit, the branch and a
digest of uncommitted changes of a folder in a git work tree; `run_git` runs git there,
bounded in time, and never fails for want of git."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from keel.artifacts.hashing import hash_bytes, new_hasher
from keel.domain.digest import Digest
from keel.serial import dump

__all__ = ["GitState", "git_state", "run_git"]

_GIT_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class GitState:
    """Where the code stands in git: commit, branch, and a digest of uncommitted changes.

    `commit` is None in a repository without commits, `branch` None on a detached HEAD.
    `diff_digest` covers `git diff HEAD` plus the contents of untracked files, limited to
    the project folder; None when clean.
    """

    commit: str | None
    branch: str | None
    dirty: bool
    diff_digest: Digest | None

    def to_dict(self) -> dict[str, Any]:
        return dump(self)


def run_git(project_dir: Path, *args: str) -> subprocess.CompletedProcess[bytes] | None:
    """`git ARGS` in `project_dir`, its output captured; None when git is absent, fails to
    start or times out. No external diff drivers, text conversions or fsmonitor hooks: the
    repository may be untrusted, and reading its state must not run its configured programs."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        return subprocess.run(
            [git, "-c", "core.fsmonitor=false", "-c", "core.quotepath=off", *args],
            cwd=project_dir,
            capture_output=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return None


def git_state(project_dir: Path) -> GitState | None:
    """The git state of `project_dir`, or None when it is not in a work tree or git is absent.

    Never raises for git's sake: a missing binary, a timeout or a broken repository all give None,
    because lineage is recorded best effort and must not fail a run.
    """

    def run(*args: str) -> subprocess.CompletedProcess[bytes] | None:
        return run_git(project_dir, *args)

    inside = run("rev-parse", "--is-inside-work-tree")
    if inside is None or inside.returncode != 0 or inside.stdout.strip() != b"true":
        return None
    head = run("rev-parse", "--verify", "-q", "HEAD")
    commit = head.stdout.decode().strip() or None if head and head.returncode == 0 else None
    branch_run = run("symbolic-ref", "--short", "-q", "HEAD")
    branch = (
        branch_run.stdout.decode().strip() or None
        if branch_run and branch_run.returncode == 0
        else None
    )
    status = run("status", "--porcelain=v1", "-z", "--untracked-files=all", "--", ".")
    if status is None or status.returncode != 0:
        return None
    if not status.stdout:
        return GitState(commit, branch, False, None)
    hasher = new_hasher()
    if commit is not None:
        diff = run("diff", "HEAD", "--binary", "--no-ext-diff", "--no-textconv", "--", ".")
        if diff is None or diff.returncode != 0:
            return None
        hasher.update(diff.stdout)
    untracked = run("ls-files", "--others", "--exclude-standard", "-z", "--full-name", "--", ".")
    top = run("rev-parse", "--show-toplevel")
    if untracked is None or top is None or untracked.returncode != 0 or top.returncode != 0:
        return None
    top_dir = Path(top.stdout.decode().strip())
    for name in sorted(p for p in untracked.stdout.decode().split("\0") if p):
        try:
            content = (top_dir / name).read_bytes()
        except OSError:
            continue  # deleted between listing and reading
        hasher.update(f"\0untracked\0{name}\0{hash_bytes(content)}\n".encode())
    return GitState(commit, branch, True, Digest.of_hex(hasher.hexdigest()))
