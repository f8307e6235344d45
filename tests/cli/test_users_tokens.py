"""`keel users` and `keel tokens` as an admin types them."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.project import Project
from tests.cli.conftest import Keel


@pytest.fixture
def project_keel(keel: Keel) -> Keel:
    assert keel("init").code == 0
    return keel


def test_users_add_list_disable(project_keel: Keel) -> None:
    keel = project_keel
    added = keel("users", "add", "bo", "--role", "deployer", "--role", "viewer", "--json")
    assert added.code == 0, added.out
    document = added.json()
    assert document["change"] == "added"
    assert document["user"]["roles"] == ["viewer", "deployer"]
    assert document["user"]["created_by"] == "ana"  # KEEL_USER acts

    changed = keel("users", "add", "bo", "--role", "approver")
    assert changed.code == 0 and "user bo changed: roles approver" in changed.out
    assert "unchanged" in keel("users", "add", "bo", "--role", "approver").out

    listing = keel("users", "list")
    assert listing.code == 0
    assert "bo" in listing.out and "active" in listing.out and "approver" in listing.out

    keel("tokens", "create", "bo", "--json")
    disabled = keel("users", "disable", "bo", "--json")
    assert disabled.code == 0
    assert disabled.json()["user"]["state"] == "disabled"
    assert len(disabled.json()["tokens_revoked"]) == 1
    assert keel("users", "list", "--json").json()["users"][0]["state"] == "disabled"


def test_users_errors_exit_with_their_codes(project_keel: Keel) -> None:
    keel = project_keel
    bad_role = keel("users", "add", "bo", "--role", "root")
    assert bad_role.code == 2 and "root" in bad_role.err
    assert keel("users", "add", "bo").code == 2  # --role is required
    bad_name = keel("users", "add", "-x-", "--role", "viewer", "--json")
    assert bad_name.code == 2
    missing = keel("users", "disable", "nobody", "--json")
    assert missing.code == 3 and missing.json()["error"]["code"] == "not_found"
    assert keel("tokens", "create", "nobody").code == 3


def test_a_token_is_printed_once_and_listed_without_its_secret(
    project_keel: Keel, tmp_path: Path
) -> None:
    keel = project_keel
    keel("users", "add", "ci", "--role", "deployer")
    created = keel("tokens", "create", "ci", "--label", "pipeline", "--ttl", "30d")
    assert created.code == 0, created.err
    token = created.out.strip()
    assert token.startswith("keel_") and "\n" not in token
    assert "not shown again" in created.err

    as_json = keel("tokens", "create", "ci", "--ttl", "never", "--json").json()
    assert as_json["value"].startswith("keel_") and "not shown again" in as_json["warning"]
    assert as_json["token"]["expires_at"] is None and as_json["token"]["user"] == "ci"

    listing = keel("tokens", "list", "--user", "ci", "--json")
    assert listing.code == 0
    tokens = listing.json()["tokens"]
    assert [t["label"] for t in tokens] == ["pipeline", None]
    assert all(t["state"] == "active" for t in tokens)
    text = keel("tokens", "list").out
    secret = token.rsplit("_", 1)[1]
    assert secret not in listing.out and secret not in text and "pipeline" in text

    token_id = tokens[0]["id"]
    revoked = keel("tokens", "revoke", token_id, "--json")
    assert revoked.code == 0 and revoked.json()["token"]["state"] == "revoked"
    assert keel("tokens", "revoke", token_id).code == 0  # idempotent
    assert keel("tokens", "revoke", "0123456789abcdef").code == 3
    assert keel("tokens", "revoke", "nope").code == 2
    assert keel("tokens", "create", "ci", "--ttl", "soon").code == 2

    with Project.open(tmp_path, env={"KEEL_USER": "ana"}) as project:
        kinds = [e.kind for e in project.metadata.audit.events()]
        assert kinds == ["user.added", "token.created", "token.created", "token.revoked"]
        assert all(e.actor == "ana" for e in project.metadata.audit.events())
        assert project.metadata.audit.verify().ok


def test_help_says_the_cli_is_trusted(project_keel: Keel) -> None:
    for group in ("users", "tokens"):
        shown = project_keel(group, "--help")
        assert shown.code == 0
        assert "Roles are enforced over HTTP" in " ".join(shown.out.split())
