"""Webhook subscriptions in the metadata store: the same semantics on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from keel.errors import ConfigError, NotFound
from keel.metadata import SqlMetadataStore
from keel.metadata.sql.audit import append_event
from keel.metadata.sql.engine import create_metadata_engine, write_transaction


def _append(store: SqlMetadataStore, metadata_url: str, count: int = 1) -> list[int]:
    """Append `user.added` events directly, as the aggregates that own them would."""
    engine = create_metadata_engine(metadata_url)
    try:
        with write_transaction(engine) as conn:
            return [
                append_event(conn, actor="ana", kind="user.added", subject=f"user-{i}").seq
                for i in range(count)
            ]
    finally:
        engine.dispose()


def test_add_records_the_webhook_its_event_and_a_cursor_at_the_head(
    store: SqlMetadataStore, metadata_url: str
) -> None:
    _append(store, metadata_url, 3)
    webhook, secret = store.webhooks.add(
        "https://hooks.example.com/keel", events=["alias.moved", "release.approved"], actor="ana"
    )
    assert len(webhook.id) == 16 and len(secret) >= 43
    assert webhook.events == ("alias.moved", "release.approved")
    assert (webhook.created_by, webhook.failures, webhook.last_error) == ("ana", 0, None)
    [event] = store.audit.events(kinds=["webhook.added"])
    # Its cursor is its own event: it receives what is committed after it, nothing older.
    assert webhook.cursor == event.seq == 4 == store.audit.head()[0]
    assert event.subject == webhook.id and event.actor == "ana"
    assert event.evidence == {
        "url": "https://hooks.example.com/keel",
        "events": ["alias.moved", "release.approved"],
    }
    assert secret not in event.evidence_json
    assert store.webhooks.list() == [webhook]
    assert store.webhooks.secret(webhook.id) == secret


def test_events_default_to_all_and_a_given_secret_is_kept(store: SqlMetadataStore) -> None:
    every, _ = store.webhooks.add("http://localhost:8080/", events=[], actor="ana")
    star, _ = store.webhooks.add("http://h/", events=["alias.moved", "*"], actor="ana")
    assert every.events == star.events == ("*",)
    assert every.wants("model.registered") and every.wants("webhook.removed")
    chosen, secret = store.webhooks.add(
        "http://h/", events=["alias.moved"], actor="ana", secret="s3cret"
    )
    assert secret == "s3cret" == store.webhooks.secret(chosen.id)
    assert chosen.wants("alias.moved") and not chosen.wants("model.registered")
    assert [w.id for w in store.webhooks.list()] == [every.id, star.id, chosen.id]


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("ftp://example.com/hook", "must be an http:// or https:// URL"),
        ("file:///etc/passwd", "must be an http:// or https:// URL"),
        ("example.com/hook", "must be an http:// or https:// URL"),
        ("https:///no-host", "must name a host"),
        ("http://example.com:99999/", "must be an http:// or https:// URL"),
        ("http://exa mple.com/", "must not contain spaces"),
    ],
)
def test_add_refuses_a_url_that_is_not_http_with_a_host(
    store: SqlMetadataStore, url: str, rule: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        store.webhooks.add(url, events=["*"], actor="ana")
    [(key, message)] = caught.value.problems
    assert key == "url" and message.startswith(rule)
    assert store.webhooks.list() == []
    assert store.audit.events() == []


def test_add_refuses_an_unknown_event_kind_naming_the_known_ones(
    store: SqlMetadataStore,
) -> None:
    with pytest.raises(ConfigError) as caught:
        store.webhooks.add("https://h/", events=["alias.moved", "alias.move"], actor="ana")
    assert "'alias.move'" in caught.value.message
    assert "alias.moved" in caught.value.message and "release.approved" in caught.value.message
    assert caught.value.problems == [("events", "unknown event kind 'alias.move'")]
    with pytest.raises(ConfigError):
        store.webhooks.add("https://h/", events=["*"], actor="ana", secret="  ")
    assert store.webhooks.list() == []


def test_remove_deletes_it_with_its_event(store: SqlMetadataStore) -> None:
    webhook, secret = store.webhooks.add("https://h/x", events=["alias.moved"], actor="ana")
    store.webhooks.remove(webhook.id, actor="ben")
    assert store.webhooks.list() == []
    [event] = store.audit.events(kinds=["webhook.removed"])
    assert (event.actor, event.subject) == ("ben", webhook.id)
    assert event.evidence == {"url": "https://h/x", "events": ["alias.moved"]}
    assert secret not in event.evidence_json
    assert store.audit.verify().ok
    with pytest.raises(NotFound, match=webhook.id) as caught:
        store.webhooks.secret(webhook.id)
    assert caught.value.hint == "`keel webhooks list` shows the webhooks"


@pytest.mark.parametrize("unknown", ["0123456789abcdef", "nope", ""])
def test_unknown_ids_are_not_found_everywhere(store: SqlMetadataStore, unknown: str) -> None:
    kept, _ = store.webhooks.add("https://h/", events=["*"], actor="ana")
    for call in (
        lambda: store.webhooks.remove(unknown, actor="ana"),
        lambda: store.webhooks.secret(unknown),
        lambda: store.webhooks.delivered(unknown, 5),
        lambda: store.webhooks.failed(unknown, "boom"),
    ):
        with pytest.raises(NotFound) as caught:
            call()
        assert kept.id in caught.value.message  # names the ones that exist
    assert len(store.audit.events()) == 1  # nothing was appended by the failures


def test_failures_count_until_a_delivery_and_the_cursor_never_moves_back(
    store: SqlMetadataStore, metadata_url: str
) -> None:
    webhook, _ = store.webhooks.add("https://h/", events=["*"], actor="ana")
    _append(store, metadata_url, 3)
    store.webhooks.failed(webhook.id, "HTTP 500 Internal Server Error:\n  oops")
    store.webhooks.failed(webhook.id, "x" * 2000)
    [failing] = store.webhooks.list()
    assert failing.cursor == webhook.cursor and failing.failures == 2
    assert failing.last_error is not None and len(failing.last_error) == 500
    store.webhooks.failed(webhook.id, "HTTP 500 Internal Server Error:\n  oops")
    assert store.webhooks.list()[0].last_error == "HTTP 500 Internal Server Error: oops"

    store.webhooks.delivered(webhook.id, webhook.cursor + 2)
    [recovered] = store.webhooks.list()
    assert (recovered.cursor, recovered.failures, recovered.last_error) == (
        webhook.cursor + 2,
        0,
        None,
    )
    store.webhooks.delivered(webhook.id, webhook.cursor + 1)  # a slower, racing pass
    assert store.webhooks.list()[0].cursor == webhook.cursor + 2
