"""Publishing audit events: in-process subscribers, followers, and signed webhooks to a real
HTTP server on loopback."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from keel import __version__
from keel.domain.audit import GENESIS, AuditEvent
from keel.events import (
    EventBus,
    deliver_webhooks,
    follow,
    notify,
    publish,
    sign,
    subscribe,
    verify_signature,
)
from keel.metadata.sql.audit import append_event
from keel.metadata.sql.engine import create_metadata_engine, write_transaction
from keel.project import Project
from tests.fixtures.webhooks import Receiver

# --- helpers ---------------------------------------------------------------------------------


def _event(seq: int, kind: str = "alias.moved") -> AuditEvent:
    return AuditEvent(
        seq, datetime.now(UTC), "ana", kind, "flights", 1, "production", None, None, "{}",
        GENESIS, GENESIS,
    )  # fmt: skip


def append(project: Project, *kinds: str) -> list[AuditEvent]:
    """Append events directly, in one transaction, as the aggregates that own them would."""
    engine = create_metadata_engine(project.settings.db_url)
    try:
        with write_transaction(engine) as conn:
            return [
                append_event(conn, actor="ana", kind=kind, subject=f"subject-{i}")
                for i, kind in enumerate(kinds)
            ]
    finally:
        engine.dispose()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    opened = Project.init(tmp_path / "project", env={"KEEL_USER": "ana"})
    try:
        yield opened
    finally:
        opened.close()


def _subscribe(project: Project, receiver: Receiver, events: list[str]) -> str:
    webhook, secret = project.metadata.webhooks.add(receiver.url, events=events, actor="ana")
    receiver.secret = secret
    return webhook.id


# --- in process ------------------------------------------------------------------------------


def test_subscribers_get_the_kinds_they_asked_for_in_order_until_unsubscribed() -> None:
    bus = EventBus()
    everything: list[int] = []
    moves: list[int] = []
    stop_all = bus.subscribe(lambda event: everything.append(event.seq))
    stop_moves = bus.subscribe(lambda event: moves.append(event.seq), kinds={"alias.moved"})
    bus.publish(_event(seq, kind) for seq, kind in [(1, "alias.moved"), (2, "user.added")])
    bus.publish([_event(3)])
    assert everything == [1, 2, 3] and moves == [1, 3]
    stop_moves()
    stop_moves()  # harmless
    bus.publish([_event(4)])
    assert everything == [1, 2, 3, 4] and moves == [1, 3]
    stop_all()
    bus.publish([_event(5)])
    assert everything == [1, 2, 3, 4]


def test_a_raising_subscriber_is_logged_and_the_others_and_the_caller_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    got: list[tuple[str, int]] = []

    def broken(event: AuditEvent) -> None:
        raise RuntimeError(f"cannot handle {event.seq}")

    unsubscribers = [
        subscribe(lambda event: got.append(("first", event.seq))),
        subscribe(broken),
        subscribe(lambda event: got.append(("last", event.seq))),
    ]
    try:
        with caplog.at_level(logging.ERROR, logger="keel.events"):
            publish([_event(1), _event(2)])
    finally:
        for unsubscribe in unsubscribers:
            unsubscribe()
    assert got == [("first", 1), ("last", 1), ("first", 2), ("last", 2)]
    failures = [r for r in caplog.records if r.name == "keel.events"]
    assert len(failures) == 2
    assert "failed on event 1 (alias.moved)" in failures[0].getMessage()
    assert failures[0].exc_info is not None and "cannot handle 1" in str(failures[0].exc_info[1])


def test_subscribing_and_publishing_from_many_threads() -> None:
    bus = EventBus()
    counts = [0] * 8
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            for seq in range(200):

                def count(event: AuditEvent, index: int = index) -> None:
                    counts[index] += 1

                unsubscribe = bus.subscribe(count)
                bus.publish([_event(seq)])
                unsubscribe()
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    # Each thread saw at least its own event each round, and no subscriber was left behind.
    assert all(count >= 200 for count in counts)
    before = list(counts)
    bus.publish([_event(999)])
    assert counts == before


def test_follow_returns_what_was_committed_after_a_seq(project: Project) -> None:
    first, second, third = append(project, "user.added", "alias.moved", "alias.rolled_back")
    assert [e.seq for e in follow(project, after=0)] == [first.seq, second.seq, third.seq]
    assert follow(project, after=first.seq, kinds=["alias.moved"]) == [second]
    assert follow(project, after=third.seq) == []
    assert follow(project, after=0, limit=1) == [first]


# --- signatures ------------------------------------------------------------------------------


def test_a_signature_verifies_only_the_same_body_with_the_same_secret() -> None:
    body = b'{"kind":"alias.moved","seq":7}'
    header = sign("s3cret", body)
    assert verify_signature("s3cret", header, body)
    assert not verify_signature("s3cret", header, body.replace(b"7", b"8"))
    assert not verify_signature("other", header, body)
    assert not verify_signature("s3cret", header, body + b" ")


def test_a_stale_or_future_timestamp_is_rejected() -> None:
    body = b"{}"
    now = 1_800_000_000.0
    header = sign("k", body, at=now - 301)
    assert not verify_signature("k", header, body, now=now)
    assert verify_signature("k", header, body, now=now, tolerance=600)
    assert not verify_signature("k", sign("k", body, at=now + 301), body, now=now)
    assert verify_signature("k", sign("k", body, at=now - 299), body, now=now)


def test_a_rotated_secret_may_be_one_of_several_signatures() -> None:
    body = b"{}"
    old = sign("old", body).split("v1=")[1]
    header = sign("new", body) + f",v1={old}"
    assert verify_signature("old", header, body) and verify_signature("new", header, body)
    assert not verify_signature("third", header, body)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "v1=" + "0" * 64,
        "t=1800000000",
        "t=abc,v1=" + "0" * 64,
        "t=١٨٠٠٠٠٠٠٠٠,v1=" + "0" * 64,  # digits, but not ASCII ones
        "t=1800000000,t=1800000000,v1=" + "0" * 64,
        "t=1800000000,v1=zz",
        "t=1800000000,v1=é" + "0" * 63,
        "t=1800000000;v1=" + "0" * 64,
    ],
)
def test_a_malformed_header_is_rejected_without_raising(header: str) -> None:
    assert not verify_signature("k", header, b"{}", now=1_800_000_000)


def test_the_signature_is_the_documented_hmac() -> None:
    body = b'{"a":1}'
    expected = hmac.new(b"k", b"1800000000." + body, hashlib.sha256).hexdigest()
    assert sign("k", body, at=1_800_000_000) == f"t=1800000000,v1={expected}"


# --- webhooks --------------------------------------------------------------------------------


def test_delivery_posts_each_wanted_event_in_order_signed(
    project: Project, receiver: Receiver
) -> None:
    webhook_id = _subscribe(project, receiver, ["user.added", "alias.moved"])
    events = append(project, "user.added", "token.created", "alias.moved", "user.disabled")

    report = deliver_webhooks(project)

    assert report.ok and report.delivered == 2
    [item] = report.webhooks
    assert (item.webhook, item.delivered, item.cursor) == (webhook_id, 2, events[-1].seq)
    got = receiver.received
    assert [r.json()["seq"] for r in got] == [events[0].seq, events[2].seq]
    assert all(r.signature_ok for r in got)
    first = got[0]
    assert first.json() == {**events[0].to_dict(), "delivery": f"{webhook_id}-{events[0].seq}"}
    assert first.headers["Content-Type"] == "application/json"
    assert first.headers["User-Agent"] == f"keel/{__version__}"
    assert first.headers["X-Keel-Event"] == "user.added"
    assert first.headers["X-Keel-Delivery"] == f"{webhook_id}-{events[0].seq}"
    # Events it does not want moved its cursor too; nothing is sent twice.
    [stored] = project.metadata.webhooks.list()
    assert stored.cursor == events[-1].seq and stored.failures == 0
    again = deliver_webhooks(project)
    assert again.ok and again.delivered == 0 and len(receiver.received) == 2


def test_a_new_webhook_gets_only_later_events_and_not_its_own(
    project: Project, receiver: Receiver
) -> None:
    append(project, "user.added")
    _subscribe(project, receiver, ["*"])
    assert deliver_webhooks(project).delivered == 0
    [later] = append(project, "user.added")
    assert deliver_webhooks(project).delivered == 1
    assert [r.json()["seq"] for r in receiver.received] == [later.seq]


def test_a_failed_event_is_retried_first_and_in_order_on_the_next_pass(
    project: Project, receiver: Receiver
) -> None:
    webhook_id = _subscribe(project, receiver, ["*"])
    start = project.metadata.webhooks.list()[0].cursor
    one, two = append(project, "user.added", "alias.moved")
    receiver.statuses = [500]

    failed = deliver_webhooks(project)

    assert not failed.ok and failed.delivered == 0
    [item] = failed.failed
    assert (item.webhook, item.failed_seq, item.cursor) == (webhook_id, one.seq, start)
    assert item.error is not None and item.error.startswith("HTTP 500")
    assert "oops: it broke" in item.error
    assert len(receiver.received) == 1  # it stopped at the failure: order is kept
    [stored] = project.metadata.webhooks.list()
    assert stored.cursor == start and stored.failures == 1
    assert stored.last_error == item.error

    retried = deliver_webhooks(project)

    assert retried.ok and retried.delivered == 2
    assert [r.json()["seq"] for r in receiver.received] == [one.seq, one.seq, two.seq]
    assert [r.headers["X-Keel-Delivery"] for r in receiver.received[1:]] == [
        f"{webhook_id}-{one.seq}",
        f"{webhook_id}-{two.seq}",
    ]
    assert receiver.received[0].body == receiver.received[1].body  # the same event again
    assert all(r.signature_ok for r in receiver.received)
    [stored] = project.metadata.webhooks.list()
    assert (stored.cursor, stored.failures, stored.last_error) == (two.seq, 0, None)


def test_a_refused_connection_is_a_recorded_failure(project: Project, receiver: Receiver) -> None:
    webhook_id = _subscribe(project, receiver, ["*"])
    append(project, "user.added")
    receiver.stop()

    report = deliver_webhooks(project, timeout=2)

    [item] = report.failed
    assert item.webhook == webhook_id
    assert item.error is not None and item.error.startswith(f"cannot reach {receiver.url}")
    [stored] = project.metadata.webhooks.list()
    assert stored.failures == 1 and stored.last_error == item.error


def test_a_slow_receiver_times_out(project: Project, receiver: Receiver) -> None:
    _subscribe(project, receiver, ["*"])
    append(project, "user.added")
    receiver.delay = 5
    started = time.monotonic()
    report = deliver_webhooks(project, timeout=0.3)
    assert time.monotonic() - started < 4
    [item] = report.failed
    assert item.error is not None and "timed out" in item.error


def test_a_redirect_is_a_failure_not_followed(project: Project, receiver: Receiver) -> None:
    _subscribe(project, receiver, ["*"])
    append(project, "user.added")
    receiver.statuses = [302]
    [item] = deliver_webhooks(project).failed
    assert item.error is not None and item.error.startswith("HTTP 302")
    assert "redirects are not followed" in item.error
    assert len(receiver.received) == 1


def test_max_events_bounds_a_pass(project: Project, receiver: Receiver) -> None:
    _subscribe(project, receiver, ["*"])
    events = append(project, *["user.added"] * 5)
    first = deliver_webhooks(project, max_events=3)
    assert first.delivered == 3 and first.webhooks[0].more
    second = deliver_webhooks(project, max_events=3)
    assert second.delivered == 2 and not second.webhooks[0].more
    assert [r.json()["seq"] for r in receiver.received] == [e.seq for e in events]


def test_each_webhook_keeps_its_own_cursor(project: Project, receiver: Receiver) -> None:
    healthy = _subscribe(project, receiver, ["*"])
    secret = receiver.secret
    dead = Receiver()
    dead.stop()
    broken, _ = project.metadata.webhooks.add(dead.url, events=["*"], actor="ana")
    receiver.secret = secret
    [event] = append(project, "user.added")

    report = deliver_webhooks(project, timeout=2)

    by_id = {item.webhook: item for item in report.webhooks}
    assert by_id[healthy].ok and by_id[healthy].cursor == event.seq
    assert not by_id[broken.id].ok and by_id[broken.id].failed_seq == event.seq
    # The healthy one got its own webhook.added of the broken one too: it came later.
    assert [r.json()["kind"] for r in receiver.received] == ["webhook.added", "user.added"]


def test_notify_publishes_then_delivers_and_never_raises(
    project: Project, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[int] = []
    unsubscribe = subscribe(lambda event: seen.append(event.seq))
    try:
        assert notify(project, []) == deliver_webhooks(project)  # nothing registered
        _subscribe(project, receiver, ["alias.moved"])
        events = append(project, "alias.moved")
        report = notify(project, events)
        assert report is not None and report.delivered == 1
        assert seen == [events[0].seq]

        receiver.stop()
        later = append(project, "alias.moved")
        with caplog.at_level(logging.WARNING, logger="keel.events"):
            report = notify(project, later)
        assert report is not None and not report.ok
        assert seen == [events[0].seq, later[0].seq]
        assert any("retried on the next delivery" in r.getMessage() for r in caplog.records)
    finally:
        unsubscribe()


def test_notify_costs_one_query_when_no_webhook_is_registered(project: Project) -> None:
    project.metadata.webhooks.list()  # the store is open and migrated before counting
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(Engine, "before_cursor_execute", record)
    try:
        notify(project, [_event(1)])
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    queries = [s for s in statements if not s.lstrip().upper().startswith(("BEGIN", "COMMIT"))]
    assert len(queries) == 1 and "webhooks" in queries[0]
