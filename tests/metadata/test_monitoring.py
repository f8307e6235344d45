"""Monitoring in the metadata store (reference profiles, window signals, alerts): the same
semantics on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta

import pytest

from keel.domain.monitoring import AlertDraft, MonitorMetric
from keel.errors import NotFound
from keel.metadata import SqlMetadataStore, open_metadata_store

T0 = datetime(2013, 7, 1, tzinfo=UTC)


def _draft(subject: str = "inputs.temp", value: float = 0.3, **changes: object) -> AlertDraft:
    fields: dict[str, object] = {
        "model": "flights-delay",
        "rule": "feature-drift",
        "signal": "drift",
        "subject": subject,
        "severity": "warning",
        "message": f"drift of {subject} is {value}",
        "owner": "dana",
        "version": 1,
        "value": value,
        "threshold": 0.1,
        "evidence": {"test": "wasserstein", "value": value},
    }
    fields.update(changes)
    return AlertDraft(**fields)  # type: ignore[arg-type]


def test_an_alert_is_raised_once_updated_while_it_fires_and_reopened_after_resolving(
    store: SqlMetadataStore,
) -> None:
    first, opened = store.monitoring.raise_alert(_draft(value=0.3), at=T0, actor="monitor")
    assert opened and first.is_open and first.owner == "dana"
    again, opened_again = store.monitoring.raise_alert(
        _draft(value=0.5), at=T0 + timedelta(hours=1), actor="monitor"
    )
    assert not opened_again and again.id == first.id
    assert again.value == 0.5 and again.last_seen_at == T0 + timedelta(hours=1)
    assert again.opened_at == T0
    # Another subject is another alert.
    other, opened_other = store.monitoring.raise_alert(
        _draft("inputs.dewp"), at=T0, actor="monitor"
    )
    assert opened_other and other.id != first.id
    assert len(store.monitoring.alerts(state="open")) == 2

    resolved = store.monitoring.resolve_alert(
        first.id, at=T0 + timedelta(hours=2), actor="monitor", reason="back to normal"
    )
    assert resolved.state == "resolved" and resolved.resolved_at == T0 + timedelta(hours=2)
    # Resolving twice changes nothing.
    assert store.monitoring.resolve_alert(first.id, at=T0, actor="x", reason="y") == resolved
    reopened, opened_anew = store.monitoring.raise_alert(
        _draft(value=0.4), at=T0 + timedelta(hours=3), actor="monitor"
    )
    assert opened_anew and reopened.id != first.id

    kinds = [
        (e.kind, e.subject) for e in store.audit.events(kinds=["alert.opened", "alert.resolved"])
    ]
    assert kinds == [
        ("alert.opened", first.id),
        ("alert.opened", other.id),
        ("alert.resolved", first.id),
        ("alert.opened", reopened.id),
    ]
    assert store.audit.verify().ok


def test_an_unknown_alert_is_not_found(store: SqlMetadataStore) -> None:
    with pytest.raises(NotFound, match="no alert"):
        store.monitoring.resolve_alert("0" * 32, at=T0, actor="a", reason="b")


def _raise_same(url: str, barrier: object, results: object) -> None:
    with open_metadata_store(url) as store:
        barrier.wait()  # type: ignore[attr-defined]
        alert, opened = store.monitoring.raise_alert(_draft(), at=T0, actor="monitor")
        results.put((alert.id, opened))  # type: ignore[attr-defined]


@pytest.mark.load
def test_two_monitors_raising_the_same_alert_at_once_open_one(
    store: SqlMetadataStore, metadata_url: str
) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(3)
    results = context.Queue()
    workers = [
        context.Process(target=_raise_same, args=(metadata_url, barrier, results)) for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    outcomes = [results.get(timeout=5) for _ in workers]
    assert len({alert_id for alert_id, _ in outcomes}) == 1
    assert sorted(opened for _, opened in outcomes) == [False, False, True]
    assert len(store.audit.events(kinds=["alert.opened"])) == 1


def _metric(start: datetime, signal: str, subject: str, value: float | None) -> MonitorMetric:
    return MonitorMetric(
        model="flights-delay",
        version=1,
        window_start=start,
        window_end=start + timedelta(days=1),
        signal=signal,
        subject=subject,
        value=value,
        detail={"test": "ks"},
    )


def test_window_signals_are_kept_replaced_when_monitored_again_and_latest_read(
    store: SqlMetadataStore,
) -> None:
    day = timedelta(days=1)
    store.monitoring.record_metrics(
        [_metric(T0, "drift", "inputs.temp", 0.1), _metric(T0, "null_rate", "inputs.temp", 0.0)]
    )
    store.monitoring.record_metrics([_metric(T0 + day, "drift", "inputs.temp", 0.2)])
    # The first window again: what it held is replaced, not added to.
    store.monitoring.record_metrics([_metric(T0, "drift", "inputs.temp", 0.15)])
    series = store.monitoring.metrics("flights-delay", signal="drift")
    assert [(m.window_start, m.value) for m in series] == [(T0, 0.15), (T0 + day, 0.2)]
    assert store.monitoring.metrics("flights-delay", signal="null_rate") == []
    latest = store.monitoring.latest_metrics("flights-delay")
    assert [(m.signal, m.value) for m in latest] == [("drift", 0.2)]
    assert latest[0].detail == {"test": "ks"}
    # Not-a-number is stored as unknown, not refused.
    store.monitoring.record_metrics([_metric(T0 + 2 * day, "performance", "roc_auc", float("nan"))])
    assert store.monitoring.metrics("flights-delay", signal="performance")[0].value is None
    # Only some signals: what the UI's home page reads.
    some = store.monitoring.latest_metrics(signals=["performance"])
    assert [(m.signal, m.window_start) for m in some] == [("performance", T0 + 2 * day)]
    assert store.monitoring.latest_metrics("flights-delay", signals=["schema"]) == []
    # The newest windows' ends, for charts that draw only those.
    ends = [T0 + 3 * day, T0 + 2 * day, T0 + day]
    assert store.monitoring.window_ends("flights-delay", limit=5) == ends
    assert store.monitoring.window_ends("flights-delay", limit=2) == ends[:2]
    assert store.monitoring.window_ends("no-such-model", limit=2) == []
