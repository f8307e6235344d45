"""Approvals: separation of duties, roles, expiry, re-validation when the holder changed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from keel.project import Project
from tests.fixtures.cli import Keel
from tests.fixtures.trained import MODEL, write_spec

BEATS = {"type": "beats_champion", "metric": "roc_auc", "margin": 0.0}


def _open(folder: Path) -> Project:
    return Project.open(folder, env={"KEEL_USER": "ana"})


def _as(monkeypatch: pytest.MonkeyPatch, user: str) -> None:
    monkeypatch.setenv("KEEL_USER", user)


def _request(keel: Keel, folder: Path, version: int, alias: str = "production") -> str:
    result = keel("-C", folder, "promote", f"{MODEL}@{version}", "--to", alias, "--json")
    assert result.code == 8, result.out + result.err
    document = result.json()
    assert document["outcome"] == "pending"
    request_id: str = document["request"]["id"]
    return request_id


def _kinds(folder: Path) -> list[str]:
    with _open(folder) as project:
        return [e.kind for e in project.metadata.audit.events()]


def test_the_requester_cannot_approve_and_a_second_person_can(
    keel: Keel, release_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_spec(release_project, {"gates": [BEATS], "approvals": {"required": 1}})
    _as(monkeypatch, "ana")
    request_id = _request(keel, release_project, 2)
    before = _kinds(release_project)

    own = keel("-C", release_project, "approve", request_id)
    assert own.code == 5
    assert "ana requested" in own.err and "separation of duties" in own.err
    own_reject = keel("-C", release_project, "reject", request_id)
    assert own_reject.code == 5
    assert _kinds(release_project) == before  # nothing recorded

    _as(monkeypatch, "ben")
    approved = keel("-C", release_project, "approve", request_id[:8], "--comment", "checked")
    assert approved.code == 0, approved.err
    assert f"APPROVED: {MODEL}@production is v2" in approved.out
    with _open(release_project) as project:
        assert project.metadata.models.resolve(f"{MODEL}@production").version == 2
        request = project.metadata.releases.request(request_id)
        assert request.status == "approved" and request.approved_by == ["ben"]
        moved = project.metadata.audit.events(kinds=["alias.moved"])[-1]
        assert moved.actor == "ben"
        assert moved.evidence["requested_by"] == "ana"
        assert moved.evidence["approved_by"] == ["ben"]
        approval = project.metadata.audit.events(kinds=["release.approved"])[-1]
        assert approval.reason == "checked" and approval.actor == "ben"
    again = keel("-C", release_project, "approve", request_id)
    assert again.code == 4 and "approved, not pending" in again.err


def test_two_approvals_with_roles(
    keel: Keel, release_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_spec(release_project, {"approvals": {"required": 2, "roles": ["approver"]}})
    _as(monkeypatch, "ana")
    request_id = _request(keel, release_project, 1)

    _as(monkeypatch, "ben")
    no_role = keel("-C", release_project, "approve", request_id)
    assert no_role.code == 5
    assert "needs one of the roles approver" in no_role.err and "keel users add ben" in no_role.err

    with _open(release_project) as project:
        project.metadata.identities.add_user("ben", ["approver"], actor="admin")
        project.metadata.identities.add_user("cy", ["approver", "viewer"], actor="admin")
    first = keel("-C", release_project, "approve", request_id, "--json")
    assert first.code == 8, first.err  # recorded, one more needed
    assert first.json()["outcome"] == "recorded"
    twice = keel("-C", release_project, "approve", request_id)
    assert twice.code == 4 and "already decided" in twice.err

    _as(monkeypatch, "cy")
    second = keel("-C", release_project, "approve", request_id, "--json")
    assert second.code == 0, second.err
    assert second.json()["request"]["status"] == "approved"
    with _open(release_project) as project:
        assert project.metadata.releases.holder(MODEL, "production") == 1


def test_a_rejection_closes_the_request_and_leaves_the_alias(
    keel: Keel, release_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_spec(release_project, {"approvals": {"required": 1}})
    _as(monkeypatch, "ana")
    request_id = _request(keel, release_project, 3)
    _as(monkeypatch, "ben")
    rejected = keel("-C", release_project, "reject", request_id, "--comment", "too weak")
    assert rejected.code == 0 and "REJECTED" in rejected.out
    late = keel("-C", release_project, "approve", request_id)
    assert late.code == 4
    with _open(release_project) as project:
        assert project.metadata.releases.holder(MODEL, "production") is None
        event = project.metadata.audit.events(kinds=["release.rejected"])[-1]
        assert event.reason == "too weak" and event.actor == "ben"


def test_requests_expire(
    keel: Keel, release_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_spec(release_project, {"approvals": {"required": 1}, "request_ttl": "1s"})
    _as(monkeypatch, "ana")
    request_id = _request(keel, release_project, 2)
    time.sleep(1.2)
    _as(monkeypatch, "ben")
    late = keel("-C", release_project, "approve", request_id)
    assert late.code == 4 and "is expired" in late.err
    with _open(release_project) as project:
        assert project.metadata.releases.request(request_id).status == "expired"
        assert project.metadata.releases.holder(MODEL, "production") is None
        assert project.metadata.audit.events(kinds=["release.expired"])


def test_an_approval_is_revalidated_when_the_holder_changed(
    keel: Keel, release_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """v3 holds production; v1 and v2 are both requested (each beats v3). v2 is approved
    first; the approval of v1 then re-runs the gates against v2, and v1 loses."""
    write_spec(release_project, {"gates": [BEATS], "approvals": {"required": 1}})
    with _open(release_project) as project:
        project.metadata.releases.move_alias(
            MODEL, "production", 3, expected_holder=None, actor="setup", reason="setup"
        )
    _as(monkeypatch, "ana")
    first = _request(keel, release_project, 1)
    second = _request(keel, release_project, 2)
    _as(monkeypatch, "ben")
    assert keel("-C", release_project, "approve", second).code == 0
    stale = keel("-C", release_project, "approve", first, "--json")
    assert stale.code == 1, stale.out + stale.err
    document = stale.json()
    assert document["outcome"] == "refused"
    assert document["request"]["status"] == "refused"
    assert "moved from v3 to v2" in document["request"]["outcome"]
    [gate] = document["gates"]
    assert gate["passed"] is False and gate["evidence"]["champion_version"] == 2
    with _open(release_project) as project:
        assert project.metadata.releases.holder(MODEL, "production") == 2
        refused = project.metadata.audit.events(kinds=["release.refused"])
        assert refused and refused[-1].subject == first


def test_a_revalidated_approval_that_still_passes_moves_against_the_new_holder(
    keel: Keel, release_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_spec(release_project, {"gates": [BEATS], "approvals": {"required": 1}})
    _as(monkeypatch, "ana")
    request_id = _request(keel, release_project, 2)  # nothing holds production yet
    with _open(release_project) as project:
        project.metadata.releases.move_alias(
            MODEL, "production", 3, expected_holder=None, actor="setup", reason="meanwhile"
        )
    _as(monkeypatch, "ben")
    result = keel("-C", release_project, "approve", request_id, "--json")
    assert result.code == 0, result.err
    with _open(release_project) as project:
        moved = project.metadata.audit.events(kinds=["alias.moved"])[-1]
        assert moved.version == 2 and moved.evidence["from"] == 3
        assert moved.evidence["revalidated_against"] == 3


def test_requests_list_and_show(
    keel: Keel, release_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_spec(release_project, {"gates": [BEATS], "approvals": {"required": 1}})
    _as(monkeypatch, "ana")
    request_id = _request(keel, release_project, 2, alias="production")
    listing = keel("-C", release_project, "requests", "list")
    assert request_id in listing.out and "pending" in listing.out
    shown = keel("-C", release_project, "requests", "show", request_id)
    assert shown.code == 0
    assert "PASS  beats the alias holder on roc_auc by +0" in shown.out
    again = keel("-C", release_project, "promote", f"{MODEL}@2", "--to", "production", "--json")
    assert again.code == 8 and again.json()["request"]["id"] == request_id  # not a duplicate
    unknown = keel("-C", release_project, "approve", "abcdef0123")
    assert unknown.code == 3
    malformed = keel("-C", release_project, "approve", "xyz!")
    assert malformed.code == 2 and "is invalid: expected hex characters" in malformed.err
