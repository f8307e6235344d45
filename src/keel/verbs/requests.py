"""`project.requests()` and `project.request()`: release requests, and one with its gates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.domain.release import GateResult, ReleaseRequest
    from keel.workspace import Workspace

__all__ = ["ReleaseRequestDetail", "ReleaseRequests", "request", "requests"]


@dataclass(frozen=True)
class ReleaseRequests:
    """Release requests, newest first, each naming its owner."""

    requests: list[ReleaseRequest]

    def to_dict(self) -> dict[str, Any]:
        return {"requests": [r.to_dict() for r in self.requests]}


@dataclass(frozen=True)
class ReleaseRequestDetail:
    """One release request, naming its owner, with the gates evaluated when it was opened."""

    request: ReleaseRequest
    gates: list[GateResult]

    def to_dict(self) -> dict[str, Any]:
        return {"request": self.request.to_dict(), "gates": [g.to_dict() for g in self.gates]}


def requests(
    project: Workspace,
    *,
    status: str | None = None,
    model: str | None = None,
    limit: int | None = None,
) -> ReleaseRequests:
    """Release requests, newest first (as `keel requests list`): of `status` (pending,
    approved, rejected, expired, superseded or refused; None for all) and `model` if given,
    the newest `limit` with a limit. Each names its owner: the one recorded with it, else
    keel.yaml's release owner."""
    from keel.domain.release import REQUEST_STATUSES
    from keel.errors import ConfigError
    from keel.release.service import with_release_owner

    if status is not None and status not in REQUEST_STATUSES:
        raise ConfigError(
            f"unknown request status {status!r}",
            problems=[("status", f"must be one of {', '.join(REQUEST_STATUSES)}")],
        )
    found = project.metadata.releases.requests(status=status, model=model, limit=limit)
    return ReleaseRequests([with_release_owner(project, r) for r in found])


def request(project: Workspace, request_id: str) -> ReleaseRequestDetail:
    """One release request by id or unique id prefix, with its owner and the verdict and
    evidence of each gate (as `keel requests show`); `NotFound` otherwise."""
    from keel.release.service import with_release_owner

    releases = project.metadata.releases
    found = with_release_owner(project, releases.request(request_id))
    return ReleaseRequestDetail(found, releases.evaluation(found.evaluation))
