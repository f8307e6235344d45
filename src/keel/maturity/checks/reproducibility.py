"""Reproducibility: can each production version be rebuilt from what was recorded?"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from keel.code.environment import LOCK_ARTIFACT
from keel.code.git import run_git
from keel.maturity.checks.production import _item, _per_version, _Production
from keel.maturity.model import Item, Status

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__: list[str] = []


def _reproducibility(project: Workspace, production: Sequence[_Production]) -> list[Item]:
    metadata, artifacts = project.metadata, project.artifacts
    project_dir = project.settings.project_dir

    def dataset(p: _Production) -> tuple[Status, str]:
        if p.run is None or p.run.dataset is None:
            return "fail", f"{p.ref}: its run records no dataset version"
        found = metadata.datasets.find(p.run.dataset)
        if found is None:
            return "fail", f"{p.ref}: dataset {p.run.dataset.short} is not recorded"
        if not artifacts.exists(found.data):
            return "fail", f"{p.ref}: dataset {found.short} is recorded, its data is missing"
        if found.manifest is not None:
            # The files stay in the lake; whether they still match is checked when read.
            where = f"a manifest of {found.source} in the store"
            return "pass", f"{p.ref}: dataset {found.short} ({found.rows:,} rows), {where}"
        return "pass", f"{p.ref}: dataset {found.short} ({found.rows:,} rows) in the store"

    def code(p: _Production) -> tuple[Status, str]:
        commit = None if p.run is None else p.run.git_commit
        if commit is None:
            return "fail", f"{p.ref}: its run recorded no git commit (trained outside git)"
        done = run_git(project_dir, "cat-file", "-e", f"{commit}^{{commit}}")
        if done is None:
            return "fail", f"{p.ref}: commit {commit[:12]} could not be checked (no git here)"
        if done.returncode != 0:
            return "fail", f"{p.ref}: commit {commit[:12]} is not in this repository"
        if p.run is not None and p.run.git_dirty:
            return "partial", f"{p.ref}: commit {commit[:12]} plus uncommitted changes"
        return "pass", f"{p.ref}: commit {commit[:12]} is in the repository, clean"

    def environment(p: _Production) -> tuple[Status, str]:
        if p.run is None or p.run.environment is None:
            return "fail", f"{p.ref}: its run recorded no environment"
        lock = next((a for a in metadata.runs.artifacts(p.run.id) if a.name == LOCK_ARTIFACT), None)
        if lock is None or not artifacts.exists(lock.digest):
            return "fail", f"{p.ref}: {LOCK_ARTIFACT} is not in the store"
        return "pass", f"{p.ref}: environment lock {p.run.environment[:19]} in the store"

    retrain = "keel train, then keel promote MODEL@NEW --to production"
    items = []
    for key, title, judge, fix in (
        (
            "reproducibility.dataset",
            "production data snapshot present in the store",
            dataset,
            retrain,
        ),
        (
            "reproducibility.code",
            "production training code commit reachable in git",
            code,
            "commit the project (git add -A && git commit), then " + retrain,
        ),
        (
            "reproducibility.environment",
            "production environment lock recorded",
            environment,
            retrain,
        ),
    ):
        status, evidence = _per_version(production, judge)
        items.append(_item("reproducibility", key, title, status, evidence, fix))
    return items
