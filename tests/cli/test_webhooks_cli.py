"""`keel webhooks add|list|remove|deliver`, against a real receiver on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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


def _append(tmp_path: Path, *kinds: str) -> None:
    with Project.open(tmp_path, env={"KEEL_USER": "ana"}) as project:
        append(project, *kinds)


def test_add_list_deliver_remove(keel: Keel, tmp_path: Path, receiver: Receiver) -> None:
    assert keel("init").code == 0
    added = keel("webhooks", "add", receiver.url, "--event", "user.added", "--json")
    assert added.code == 0, added.out + added.err
    document = added.json()
    webhook = document["webhook"]
    receiver.secret = document["secret"]
    assert webhook["events"] == ["user.added"] and webhook["created_by"] == "ana"
    assert "verify_signature" in document["verify"]

    listed = keel("webhooks", "list", "--json")
    assert listed.code == 0
    [row] = listed.json()["webhooks"]
    assert row["id"] == webhook["id"] and row["cursor"] == webhook["cursor"]
    assert (row["failures"], row["last_error"]) == (0, None)
    assert receiver.secret not in listed.out  # secrets are shown once, never listed
    assert receiver.secret not in keel("webhooks", "list").out

    _append(tmp_path, "user.added", "token.created")
    delivered = keel("webhooks", "deliver", "--json")
    assert delivered.code == 0, delivered.out
    assert delivered.json()["ok"] is True and delivered.json()["delivered"] == 1
    assert [r.json()["kind"] for r in receiver.received] == ["user.added"]
    assert all(r.signature_ok for r in receiver.received)
    assert "delivered 0" in keel("webhooks", "deliver").out

    removed = keel("webhooks", "remove", webhook["id"], "--json")
    assert removed.code == 0 and removed.json() == {"ok": True, "removed": webhook["id"]}
    assert keel("webhooks", "list", "--json").json()["webhooks"] == []
    assert "no webhooks" in keel("webhooks", "list").out
    again = keel("webhooks", "remove", webhook["id"], "--json")
    assert again.code == 3 and again.json()["error"]["code"] == "not_found"


def test_add_prints_the_secret_once_with_how_to_verify(keel: Keel, receiver: Receiver) -> None:
    assert keel("init").code == 0
    added = keel("webhooks", "add", receiver.url)
    assert added.code == 0, added.err
    assert "secret  " in added.out and "X-Keel-Signature" in added.out
    assert "events: *" in added.out


def test_deliver_to_a_stopped_receiver_exits_1_naming_it(
    keel: Keel, tmp_path: Path, receiver: Receiver
) -> None:
    assert keel("init").code == 0
    webhook = keel("webhooks", "add", receiver.url, "--json").json()["webhook"]
    _append(tmp_path, "user.added")
    receiver.stop()

    failed = keel("webhooks", "deliver")
    assert failed.code == 1
    assert webhook["id"] in failed.out and receiver.url in failed.out
    assert "FAILED" in failed.out and "cannot reach" in failed.out

    as_json = keel("webhooks", "deliver", "--timeout", "2", "--json")
    assert as_json.code == 1
    [item] = as_json.json()["webhooks"]
    assert item["webhook"] == webhook["id"] and item["ok"] is False
    assert item["error"].startswith("cannot reach")

    [row] = keel("webhooks", "list", "--json").json()["webhooks"]
    assert row["failures"] == 2 and row["last_error"].startswith("cannot reach")
    assert row["cursor"] == webhook["cursor"]
    assert "last error: cannot reach" in keel("webhooks", "list").out


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["ftp://example.com/hook"], "url"),
        (["https://example.com/hook", "--event", "alias.move"], "events"),
    ],
)
def test_add_refuses_a_bad_url_or_event_kind(keel: Keel, args: list[str], key: str) -> None:
    assert keel("init").code == 0
    refused = keel("webhooks", "add", *args, "--json")
    assert refused.code == 2
    assert refused.json()["error"]["problems"][0]["key"] == key
    assert keel("webhooks", "list", "--json").json()["webhooks"] == []


def test_deliver_with_no_webhooks(keel: Keel) -> None:
    assert keel("init").code == 0
    result = keel("webhooks", "deliver", "--json")
    assert result.code == 0 and result.json() == {"ok": True, "delivered": 0, "webhooks": []}
    assert "no webhooks" in keel("webhooks", "deliver").out
