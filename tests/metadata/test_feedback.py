"""Delayed feedback in the metadata store: the same semantics on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import text

from keel.domain.prediction import LoggedPrediction
from keel.errors import ConfigError
from keel.metadata import SqlMetadataStore, open_metadata_store
from keel.metadata.base import FeedbackRow, Labelled, LoggedKey
from keel.metadata.sql.engine import create_metadata_engine
from keel.metadata.sql.migrations import alembic_config
from keel.predlog.ids import new_prediction_id

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _ids(count: int, start: float = 1_709_251_200.0) -> list[str]:
    """Distinct, time-ordered prediction ids, one millisecond apart."""
    return [new_prediction_id(start + i / 1000) for i in range(count)]


def _rows(ids: list[str], labels: list[object], model: str = "m") -> list[FeedbackRow]:
    return [
        FeedbackRow(i, model, T0 + timedelta(minutes=n), label)  # type: ignore[arg-type]
        for n, (i, label) in enumerate(zip(ids, labels, strict=True))
    ]


def test_record_counts_new_replaced_and_changed(store: SqlMetadataStore) -> None:
    ids = _ids(4)
    first = store.feedback.record(_rows(ids[:3], [1, 0, 1]), actor="ana")
    assert (first.rows, first.new, first.replaced, first.changed) == (3, 3, 0, 0)
    assert first.received_by == "ana" and first.received_at.tzinfo is not None

    # A later label replaces the earlier one; sending the same label again is a replacement
    # that changed nothing.
    second = store.feedback.record(_rows(ids[1:], [1, 1, 0]), actor="bob")
    assert (second.rows, second.new, second.replaced, second.changed) == (3, 1, 2, 1)
    assert store.feedback.labels(ids) == {ids[0]: 1, ids[1]: 1, ids[2]: 1, ids[3]: 0}
    assert store.feedback.count("m") == 4
    assert store.feedback.newest("m") == second.received_at
    assert store.feedback.newest("other") is None


def test_labels_keep_their_json_kind(store: SqlMetadataStore) -> None:
    ids = _ids(5)
    labels: list[object] = [True, 3, 0.25, "late", ""]
    store.feedback.record(_rows(ids, labels), actor="ana")
    stored = store.feedback.labels(ids)
    assert [stored[i] for i in ids] == labels
    assert [type(stored[i]) for i in ids] == [bool, int, float, str, str]


def test_window_reads_one_model_by_prediction_time(store: SqlMetadataStore) -> None:
    ids = _ids(6)
    store.feedback.record(_rows(ids[:4], [0, 1, 0, 1]), actor="ana")
    store.feedback.record(_rows(ids[4:], [1, 1], model="other"), actor="ana")

    window = store.feedback.window("m", T0 + timedelta(minutes=1), T0 + timedelta(minutes=3))
    assert window == [
        Labelled(ids[1], T0 + timedelta(minutes=1), 1),
        Labelled(ids[2], T0 + timedelta(minutes=2), 0),
    ]
    assert all(w.at.tzinfo is not None for w in window)
    assert store.feedback.count("m", start=T0 + timedelta(minutes=1)) == 3
    assert store.feedback.count("m", end=T0 + timedelta(minutes=1)) == 1
    assert store.feedback.span("m") == (T0, T0 + timedelta(minutes=3))
    assert store.feedback.span("nobody") is None


@pytest.mark.parametrize(
    ("label", "rule"),
    [
        (math.nan, "finite"),
        (math.inf, "finite"),
        (None, "number, a string or a boolean"),
        ([1], "number, a string or a boolean"),
    ],
)
def test_a_bad_label_stores_nothing(store: SqlMetadataStore, label: object, rule: str) -> None:
    ids = _ids(3)
    store.feedback.record(_rows(ids[:1], [0]), actor="ana")
    with pytest.raises(ConfigError, match=rule) as caught:
        store.feedback.record(_rows(ids, [1, 1, label]), actor="ana")
    assert caught.value.problems[0][0] == "label"
    assert store.feedback.labels(ids) == {ids[0]: 0}  # not even the valid rows


def test_an_id_twice_in_one_batch_is_refused(store: SqlMetadataStore) -> None:
    [one, two] = _ids(2)
    with pytest.raises(ConfigError, match=one) as caught:
        store.feedback.record(_rows([one, two, one], [1, 0, 0]), actor="ana")
    assert caught.value.problems == [
        ("prediction_id", "at most one label per prediction in a batch")
    ]
    assert store.feedback.count("m") == 0


def test_an_empty_batch_changes_nothing(store: SqlMetadataStore) -> None:
    receipt = store.feedback.record([], actor="ana")
    assert (receipt.rows, receipt.new, receipt.replaced) == (0, 0, 0)
    assert store.feedback.newest("m") is None


def test_logged_finds_recent_predictions_by_id(store: SqlMetadataStore) -> None:
    ids = _ids(3)
    store.predictions.add(
        [
            LoggedPrediction(i, T0 + timedelta(seconds=n), "m", 2, "production", {}, {}, 1.0)
            for n, i in enumerate(ids[:2])
        ]
    )
    assert store.feedback.logged([ids[1], ids[0], ids[2], ids[0]]) == {
        ids[0]: LoggedKey("m", 2, T0),
        ids[1]: LoggedKey("m", 2, T0 + timedelta(seconds=1)),
    }


def test_100k_labels_are_recorded_and_replaced_in_one_call(
    store: SqlMetadataStore,
) -> None:
    count = 100_000
    ids = _ids(count)
    rows = [FeedbackRow(i, "m", T0 + timedelta(seconds=n), n % 2) for n, i in enumerate(ids)]
    # One call of 100,000 rows: more than any statement's parameter limit on either database.
    receipt = store.feedback.record(rows, actor="ana")
    assert (receipt.new, receipt.replaced) == (count, 0)

    flipped = [FeedbackRow(r.prediction_id, r.model, r.at, 1 - int(r.label)) for r in rows]
    again = store.feedback.record(flipped, actor="ana")
    assert (again.new, again.replaced, again.changed) == (0, count, count)

    window = store.feedback.window("m", T0, T0 + timedelta(days=2))
    assert len(window) == count and window[0] == Labelled(ids[0], T0, 1)


@pytest.mark.load
def test_concurrent_writers_count_exactly(metadata_url: str, store: SqlMetadataStore) -> None:
    """Two writers sending overlapping labels at once: every id is new exactly once."""
    ids = _ids(3_000)
    receipts = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def write(part: list[str]) -> None:
        try:
            with open_metadata_store(metadata_url) as own:
                barrier.wait(timeout=30)
                for offset in range(0, len(part), 250):
                    chunk = part[offset : offset + 250]
                    receipts.append(own.feedback.record(_rows(chunk, [1] * len(chunk)), actor="w"))
        except Exception as exc:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(exc)

    # Each writer sends two thirds of the ids; the middle third is sent by both.
    threads = [
        threading.Thread(target=write, args=(ids[:2000],)),
        threading.Thread(target=write, args=(ids[1000:][::-1],)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sum(r.new for r in receipts) == 3_000
    assert sum(r.replaced for r in receipts) == 1_000
    assert store.feedback.count("m") == 3_000


# --- labels are writes: history and audit ----------------------------------------------------


def test_a_replaced_label_is_kept_in_history_and_the_newest_is_current(
    store: SqlMetadataStore,
) -> None:
    [one, two] = _ids(2)
    store.feedback.record(_rows([one, two], [0, 1]), actor="ana", via="labels.csv")
    # The same label again replaces nothing worth keeping; a different one is history.
    store.feedback.record(_rows([one], [0]), actor="bob")
    second = store.feedback.record(_rows([one, two], [1, 1]), actor="eve")
    assert (second.replaced, second.changed) == (2, 1)
    third = store.feedback.record(_rows([one], ["late"]), actor="bob")

    history = store.feedback.history(one)
    assert [(h.revision, h.label, h.received_by, h.superseded_by) for h in history] == [
        (1, 0, "bob", "eve"),
        (2, 1, "eve", "bob"),
        (3, "late", "bob", None),
    ]
    assert [h.current for h in history] == [False, False, True]
    assert history[1].superseded_at == third.received_at == history[2].received_at
    assert history[0].superseded_at == second.received_at == history[1].received_at
    assert all(h.model == "m" and h.prediction_id == one for h in history)
    assert history[2].to_dict()["superseded_at"] is None
    # Monitoring reads the current label only.
    assert store.feedback.labels([one, two]) == {one: "late", two: 1}
    assert [w.label for w in store.feedback.window("m", T0, T0 + timedelta(days=1))] == [
        "late",
        1,
    ]
    assert [h.revision for h in store.feedback.history(two)] == [1]
    assert store.feedback.history(_ids(1, start=1_709_300_000.0)[0]) == []


def test_every_batch_is_an_audit_event_per_model(store: SqlMetadataStore) -> None:
    ids = _ids(5)
    store.feedback.record(_rows(ids[:2], [0, 1]), actor="ana")
    receipt = store.feedback.record(
        [*_rows(ids[:3], [0, 0, 1]), *_rows(ids[3:], [1, 1], model="other")],
        actor="tina",
        via="POST /v1/feedback",
    )
    events = store.audit.events(kinds=["labels.recorded"])
    assert len(events) == 3 and [e.seq for e in events[1:]] == list(receipt.events)
    mine = {e.model: e for e in events[1:]}
    assert {e.actor for e in events[1:]} == {"tina"}
    assert mine["m"].evidence == {
        "labels": 3,
        "new": 1,
        "replaced": 2,
        "changed": 1,
        "batch": 5,
        "via": "POST /v1/feedback",
    }
    assert mine["other"].evidence["labels"] == 2 and mine["other"].evidence["new"] == 2
    assert mine["m"].at == receipt.received_at
    assert store.audit.verify().ok


def test_a_refused_batch_leaves_no_history_and_no_event(store: SqlMetadataStore) -> None:
    ids = _ids(2)
    store.feedback.record(_rows(ids[:1], [0]), actor="ana")
    before = store.audit.head()
    with pytest.raises(ConfigError):
        store.feedback.record(_rows(ids, [1, None]), actor="bob")
    assert store.audit.head() == before
    assert [h.label for h in store.feedback.history(ids[0])] == [0]


def test_migration_0009_keeps_the_labels_recorded_before_it(
    metadata_url: str, store: SqlMetadataStore
) -> None:
    [one] = _ids(1)
    engine = create_metadata_engine(metadata_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0008")
            # A label as keel wrote it before label history existed.
            conn.execute(
                text(
                    "INSERT INTO feedback (prediction_id, model, at, label, received_at, "
                    "received_by) VALUES (:id, 'm', :at, '1', :at, 'old')"
                ),
                {"id": one, "at": T0 if conn.dialect.name == "postgresql" else "2024-03-01"},
            )
    finally:
        engine.dispose()
    assert store.upgrade().up_to_date
    assert store.feedback.labels([one]) == {one: 1}
    store.feedback.record(_rows([one], [0]), actor="new")
    assert [(h.label, h.received_by, h.superseded_by) for h in store.feedback.history(one)] == [
        (1, "old", "new"),
        (0, "new", None),
    ]
