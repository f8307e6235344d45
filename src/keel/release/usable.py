"""Whether a registered version is usable: its registration completed.

`keel train` registers a version in steps (the version row, its reference profile, the run's
completion, then the `candidate` alias), and a process killed in between leaves a version
that must never be released: its run failed, or monitoring has nothing to compare it with.
A version is usable only when its run completed and its reference profile is recorded;
until then no alias may move to it, no gate judges it and no server loads it. A later
`keel train` on the same inputs finishes what is missing, or retires the version (a
`model.retired` audit event) when its run can no longer complete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.errors import Conflict, KeelError, NotFound

if TYPE_CHECKING:
    from keel.domain.model import ModelVersion
    from keel.workspace import Workspace

__all__ = ["missing", "require_usable", "retired_reason", "status"]

_NO_PROFILE = "it has no reference profile"


def missing(project: Workspace, version: ModelVersion) -> list[str]:
    """What `version` lacks to be usable, in words; empty when it is usable."""
    problems: list[str] = []
    try:
        run = project.metadata.runs.get(version.run_id)
    except NotFound:
        problems.append(f"its run {version.run_id} is not recorded")
    else:
        if run.status != "completed":
            state = "still running" if run.status == "running" else "failed"
            detail = f": {run.error}" if run.error else ""
            problems.append(f"its run {run.id} {state}, not completed{detail}")
    if project.metadata.monitoring.reference(version.model, version.version) is None:
        problems.append(_NO_PROFILE)
    return problems


def retired_reason(project: Workspace, version: ModelVersion) -> str | None:
    """Why `version` was retired (the reason of its `model.retired` event), or None."""
    events = project.metadata.audit.events(model=version.model, kinds=["model.retired"])
    return next((e.reason or "" for e in events if e.version == version.version), None)


def status(project: Workspace, version: ModelVersion) -> str:
    """`usable`, `incomplete: <what it lacks>` or `retired: <why>`, for listings."""
    problems = missing(project, version)
    if not problems:
        return "usable"
    reason = retired_reason(project, version)
    if reason is not None:
        return f"retired: {reason}"
    return f"incomplete: {'; '.join(problems)}"


def require_usable(project: Workspace, version: ModelVersion, *, to: str) -> None:
    """Return if `version` is usable, else `Conflict` naming what it lacks and saying what
    to do; `to` is what was about to happen (`be promoted`, `be served`, ...)."""
    problems = missing(project, version)
    if problems == [_NO_PROFILE]:
        # Only a version registered before the profile was part of registration (which then
        # let it fail) can have a completed run and no profile: built now, as monitoring
        # builds one on first use, so upgrading keel never strands a released version.
        from keel.models.reference import reference_for

        try:
            reference_for(project, version)
        except KeelError as exc:
            problems = [f"it has no reference profile, and building one failed: {exc.message}"]
        else:
            return
    if not problems:
        return
    reason = retired_reason(project, version)
    if reason is not None:
        raise Conflict(
            f"{version.ref} cannot {to}: it was retired ({reason})",
            hint=f"`keel models show {version.model}` lists the usable versions",
        )
    raise Conflict(
        f"{version.ref} cannot {to}: its registration did not complete ({'; '.join(problems)})",
        hint="run `keel train` again on the same inputs: it completes the version or retires "
        "it and registers a complete one",
    )
