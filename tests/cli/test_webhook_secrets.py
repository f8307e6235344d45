"""Webhook secrets are sealed at rest: the database (or a dump of it) holds no secret that
could sign a request a receiver would trust, and deliveries still carry a valid HMAC."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from keel.keys import SECRET_PREFIX
from keel.project import Project
from tests.cli.conftest import Keel
from tests.test_events import Receiver, append


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    server = Receiver()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(
    request: pytest.FixtureRequest, keel: Keel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A new project on SQLite (its default) or on PostgreSQL through KEEL_DB_URL."""
    assert keel("init").code == 0
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / '.keel' / 'keel.db'}"
    url: str = request.getfixturevalue("fresh_postgres_url")
    monkeypatch.setenv("KEEL_DB_URL", url)
    return url


def _stored_secrets(db_url: str) -> list[str]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return [
                str(value)
                for value in conn.execute(sa.text("SELECT secret FROM webhooks")).scalars()
            ]
    finally:
        engine.dispose()


def _append(tmp_path: Path, *kinds: str) -> None:
    with Project.open(tmp_path, env={**os.environ, "KEEL_USER": "ana"}) as project:
        append(project, *kinds)


def test_the_database_holds_no_webhook_secret_and_deliveries_verify(
    keel: Keel,
    db_url: str,
    tmp_path: Path,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    added = keel("webhooks", "add", receiver.url, "--json")
    assert added.code == 0, added.out + added.err
    receiver.secret = added.json()["secret"]

    [stored] = _stored_secrets(db_url)
    assert stored.startswith(SECRET_PREFIX)
    assert receiver.secret not in stored

    _append(tmp_path, "user.added")
    delivered = keel("webhooks", "deliver", "--json")
    assert delivered.code == 0, delivered.out + delivered.err
    assert [r.json()["kind"] for r in receiver.received] == ["user.added"]
    assert all(r.signature_ok for r in receiver.received)

    shown = keel("webhooks", "list").out + keel("webhooks", "list", "--json").out
    audit = keel("audit-log", "--json")
    assert receiver.secret not in shown + audit.out + audit.err + caplog.text


def test_a_secret_stored_in_plain_text_still_signs_and_is_sealed_on_next_delivery(
    keel: Keel, db_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    added = keel("webhooks", "add", receiver.url, "--json")
    receiver.secret = added.json()["secret"]
    engine = sa.create_engine(db_url)  # as a keel from before sealing left it
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE webhooks SET secret = :s"), {"s": receiver.secret})
    engine.dispose()

    _append(tmp_path, "user.added")
    assert keel("webhooks", "deliver").code == 0

    assert [r.signature_ok for r in receiver.received] == [True]
    [stored] = _stored_secrets(db_url)
    assert stored.startswith(SECRET_PREFIX) and receiver.secret not in stored
    _append(tmp_path, "token.created")
    assert keel("webhooks", "deliver").code == 0
    assert [r.signature_ok for r in receiver.received] == [True, True]


def test_a_secret_sealed_with_another_key_is_a_clear_delivery_error(
    keel: Keel, db_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    added = keel("webhooks", "add", receiver.url, "--json")
    webhook = added.json()["webhook"]["id"]
    (tmp_path / ".keel" / "keys" / "secrets.key").unlink()  # the key lost: a new one is made

    _append(tmp_path, "user.added")
    delivered = keel("webhooks", "deliver")

    assert delivered.code == 1
    assert f"the secret of webhook {webhook} cannot be decrypted" in delivered.out
    assert receiver.received == []
    [row] = keel("webhooks", "list", "--json").json()["webhooks"]
    assert row["failures"] == 1 and "cannot be decrypted" in row["last_error"]
