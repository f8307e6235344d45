"""Users and API tokens in the metadata store: the same semantics on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from keel.domain.identity import Actor, parse_token
from keel.errors import ConfigError, Conflict, NotFound, PermissionDenied
from keel.metadata import SqlMetadataStore, open_metadata_store
from keel.metadata.sql.schema import api_tokens


def _kinds(store: SqlMetadataStore) -> list[tuple[str, str | None]]:
    return [(e.kind, e.subject) for e in store.audit.events()]


def test_add_change_and_disable_users(store: SqlMetadataStore) -> None:
    store.identities.add_user("bo", ["deployer", "viewer", "deployer"], actor="root")
    assert store.identities.roles("bo") == {"deployer", "viewer"}
    (user,) = store.identities.users()
    assert user["name"] == "bo" and user["roles"] == ["viewer", "deployer"]  # ROLES order
    assert user["state"] == "active" and user["created_by"] == "root"

    store.identities.add_user("bo", ["approver"], actor="root")
    assert store.identities.roles("bo") == {"approver"}
    store.identities.add_user("bo", ["approver"], actor="root")  # no change, no event

    store.identities.disable_user("bo", actor="root")
    store.identities.disable_user("bo", actor="root")  # already disabled: no event
    assert store.identities.roles("bo") == frozenset()
    assert store.identities.users()[0]["state"] == "disabled"

    store.identities.add_user("bo", ["viewer"], actor="root")  # re-enables
    assert store.identities.roles("bo") == {"viewer"}

    assert _kinds(store) == [
        ("user.added", "bo"),
        ("user.changed", "bo"),
        ("user.disabled", "bo"),
        ("user.changed", "bo"),
    ]
    changed = store.audit.events(kinds=["user.changed"])
    assert '"previous_roles":["viewer","deployer"]' in changed[0].evidence_json
    assert '"re_enabled":true' in changed[1].evidence_json
    assert store.audit.verify().ok


def test_unknown_users_and_bad_input(store: SqlMetadataStore) -> None:
    assert store.identities.roles("nobody") == frozenset()
    with pytest.raises(NotFound, match="no users exist yet"):
        store.identities.disable_user("nobody", actor="root")
    store.identities.add_user("ana", ["admin"], actor="root")
    with pytest.raises(NotFound, match=r"no user 'nobody' \(users: ana\)"):
        store.identities.create_token("nobody", actor="root")
    with pytest.raises(NotFound, match="nobody"):
        store.identities.tokens("nobody")
    with pytest.raises(ConfigError) as bad_role:
        store.identities.add_user("bo", ["superuser"], actor="root")  # type: ignore[list-item]
    assert bad_role.value.problems[0][0] == "role"
    with pytest.raises(ConfigError, match="at least one role"):
        store.identities.add_user("bo", [], actor="root")
    with pytest.raises(ConfigError, match="user name"):
        store.identities.add_user("-bo", ["viewer"], actor="root")
    with pytest.raises(ConfigError, match="label"):
        store.identities.create_token("ana", actor="root", label="x" * 201)
    with pytest.raises(ConfigError, match="ttl"):
        store.identities.create_token("ana", actor="root", ttl=timedelta(0))
    with pytest.raises(ConfigError, match="16 lowercase hex"):
        store.identities.revoke_token("keel_abc", actor="root")
    with pytest.raises(NotFound, match="0123456789abcdef"):
        store.identities.revoke_token("0123456789abcdef", actor="root")
    assert _kinds(store) == [("user.added", "ana")]


def test_a_token_authenticates_as_its_user(store: SqlMetadataStore) -> None:
    store.identities.add_user("ana", ["deployer"], actor="root")
    token = store.identities.create_token("ana", actor="root", label="ci", ttl=timedelta(days=1))
    token_id, secret = parse_token(token)
    actor = store.identities.authenticate(token)
    assert actor == Actor("ana", frozenset({"deployer"}), via="token")

    (listed,) = store.identities.tokens()
    assert listed["id"] == token_id and listed["user"] == "ana" and listed["label"] == "ci"
    assert listed["state"] == "active" and listed["revoked_at"] is None
    assert listed["expires_at"] is not None and "secret" not in str(listed)
    assert secret not in str(listed)
    assert store.identities.tokens("ana") == [listed]

    # Roles are read at each authentication, not frozen into the token.
    store.identities.add_user("ana", ["viewer"], actor="root")
    assert store.identities.authenticate(token).roles == {"viewer"}

    created = store.audit.events(kinds=["token.created"])[0]
    assert created.subject == token_id and created.actor == "root"
    assert secret not in created.evidence_json and '"label":"ci"' in created.evidence_json


def test_refused_tokens_say_why_without_the_secret(store: SqlMetadataStore) -> None:
    store.identities.add_user("ana", ["admin"], actor="root")
    token = store.identities.create_token("ana", actor="root")
    token_id, secret = parse_token(token)

    def refusal(presented: str) -> str:
        with pytest.raises(PermissionDenied) as refused:
            store.identities.authenticate(presented)
        message = f"{refused.value.message} {refused.value.hint}"
        assert secret not in message
        return message

    assert "malformed" in refusal("not-a-token")
    assert "malformed" in refusal(token + "x")
    wrong_secret = f"keel_{token_id}_{'A' * 43}"
    assert f"{token_id} is not valid" in refusal(wrong_secret)
    assert "is not valid" in refusal(f"keel_{'0' * 16}_{secret}")

    store.identities.revoke_token(token_id, actor="root")
    store.identities.revoke_token(token_id, actor="root")  # idempotent, one event
    assert "was revoked" in refusal(token)
    assert store.identities.tokens()[0]["state"] == "revoked"

    expiring = store.identities.create_token("ana", actor="root", ttl=timedelta(hours=1))
    expiring_id, _ = parse_token(expiring)
    _expire(store, expiring_id)
    assert "expired at" in refusal(expiring)
    states = {t["id"]: t["state"] for t in store.identities.tokens()}
    assert states[expiring_id] == "expired"

    assert [kind for kind, _ in _kinds(store)] == [
        "user.added",
        "token.created",
        "token.revoked",
        "token.created",
    ]


def test_disabling_a_user_stops_and_revokes_its_tokens(store: SqlMetadataStore) -> None:
    store.identities.add_user("bo", ["viewer"], actor="root")
    first = store.identities.create_token("bo", actor="root")
    second = store.identities.create_token("bo", actor="root")
    store.identities.disable_user("bo", actor="root")
    for token in (first, second):
        with pytest.raises(PermissionDenied, match="user bo is disabled"):
            store.identities.authenticate(token)
    with pytest.raises(Conflict, match="bo is disabled"):
        store.identities.create_token("bo", actor="root")
    assert {t["state"] for t in store.identities.tokens("bo")} == {"revoked"}
    disabled = store.audit.events(kinds=["user.disabled"])[0]
    assert parse_token(first)[0] in disabled.evidence_json

    # Re-enabling does not bring the old tokens back.
    store.identities.add_user("bo", ["viewer"], actor="root")
    with pytest.raises(PermissionDenied, match="revoked"):
        store.identities.authenticate(first)
    assert store.audit.verify().ok


def test_only_the_hash_is_stored(store: SqlMetadataStore) -> None:
    store.identities.add_user("ana", ["admin"], actor="root")
    token = store.identities.create_token("ana", actor="root")
    _, secret = parse_token(token)
    with store._engine.connect() as conn:
        stored = conn.execute(select(api_tokens.c.secret_hash)).scalar_one()
        rows = [tuple(map(str, row)) for row in conn.execute(select(api_tokens))]
    assert stored.startswith("sha256:") and secret not in stored
    assert not any(secret in value for row in rows for value in row)


@pytest.mark.load
def test_concurrent_add_user_is_one_user(metadata_url: str) -> None:
    with open_metadata_store(metadata_url):
        pass  # migrate once, before the threads race
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def add(role: str) -> None:
        try:
            with open_metadata_store(metadata_url) as mine:
                barrier.wait(timeout=30)
                mine.identities.add_user("cy", [role], actor=f"admin-{role}")  # type: ignore[list-item]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=add, args=(role,))
        for role in ("viewer", "trainer", "approver", "deployer")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with open_metadata_store(metadata_url) as store:
        assert len(store.identities.users()) == 1
        kinds = [kind for kind, _ in _kinds(store)]
        assert kinds[0] == "user.added" and set(kinds[1:]) <= {"user.changed"}
        assert len(kinds) <= 4 and store.audit.verify().ok


def _expire(store: SqlMetadataStore, token_id: str) -> None:
    with store._engine.begin() as conn:
        conn.execute(
            update(api_tokens)
            .where(api_tokens.c.id == token_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
