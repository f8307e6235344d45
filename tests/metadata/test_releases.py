"""Releases in the store, on both backends: compare-and-set moves, rollback, requests, the
audit chain under tampering, and promotions racing from separate processes."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, update

from keel.domain.identity import Actor
from keel.domain.release import GateResult
from keel.errors import ConfigError, Conflict, NotFound, PermissionDenied
from keel.metadata import SqlMetadataStore, open_metadata_store
from keel.metadata.sql.engine import create_metadata_engine
from keel.metadata.sql.schema import alias_history, audit_events, gate_evaluations
from tests.metadata import helpers
from tests.metadata.test_models import _register

SPAWN = multiprocessing.get_context("spawn")


def _versions(store: SqlMetadataStore, count: int) -> None:
    for _ in range(count):
        _register(store)


def test_moves_are_compare_and_set_and_recorded(store: SqlMetadataStore) -> None:
    _versions(store, 2)
    releases = store.releases
    first = releases.move_alias(
        "flights", "production", 1, expected_holder=None, actor="ana", reason="first"
    )
    assert first.kind == "alias.moved" and first.evidence == {"from": None, "to": 1}
    with pytest.raises(Conflict, match="it was no version and is now v1"):
        releases.move_alias(
            "flights", "production", 2, expected_holder=None, actor="ben", reason="stale"
        )
    assert releases.holder("flights", "production") == 1
    releases.move_alias("flights", "production", 2, expected_holder=1, actor="ben", reason="ok")
    assert releases.holder("flights", "production") == 2
    with pytest.raises(Conflict, match="already points at v2"):
        releases.move_alias("flights", "production", 2, expected_holder=2, actor="x", reason=None)
    with pytest.raises(NotFound, match="has no version 7"):
        releases.move_alias("flights", "production", 7, expected_holder=2, actor="x", reason=None)
    moves = releases.history("flights", "production")
    assert [(m.version, m.previous, m.kind) for m in moves] == [(1, None, "move"), (2, 1, "move")]
    assert store.audit.verify().ok


def test_rollback_walks_back_through_previous_holders(store: SqlMetadataStore) -> None:
    _versions(store, 3)
    releases = store.releases
    holder = None
    for version in (1, 2, 3):
        releases.move_alias(
            "flights", "production", version, expected_holder=holder, actor="ana", reason=None
        )
        holder = version
    with pytest.raises(ConfigError, match="needs a reason"):
        releases.rollback("flights", "production", actor="ana", reason=" ")
    event = releases.rollback("flights", "production", actor="ana", reason="v3 misbehaves")
    assert (event.kind, event.version, event.evidence) == (
        "alias.rolled_back",
        2,
        {"from": 3, "to": 2},
    )
    assert event.reason == "v3 misbehaves"
    assert releases.rollback("flights", "production", actor="ana", reason="again").version == 1
    with pytest.raises(Conflict, match="no previous holder"):
        releases.rollback("flights", "production", actor="ana", reason="and again")
    with pytest.raises(NotFound, match="no alias 'staging'"):
        releases.rollback("flights", "staging", actor="ana", reason="nothing there")
    assert releases.holder("flights", "production") == 1
    assert store.audit.verify().ok


def _request(store: SqlMetadataStore, version: int = 1, **overrides: object) -> str:
    evaluation = store.releases.record_evaluation(
        "flights",
        version,
        "production",
        holder=None,
        results=[GateResult("roc_auc >= 0.6", "metric_threshold", True, "0.7", {"value": 0.7})],
        actor="ana",
    )
    fields: dict[str, object] = {
        "holder": None,
        "evaluation_id": evaluation,
        "actor": "ana",
        "reason": "ship it",
        "ttl": timedelta(days=1),
        "required": 1,
        "roles": (),
        **overrides,
    }
    return store.releases.open_request("flights", version, "production", **fields).id  # type: ignore[arg-type]


def test_requests_are_decided_once_by_someone_else(store: SqlMetadataStore) -> None:
    _versions(store, 1)
    request_id = _request(store)
    releases = store.releases
    with pytest.raises(PermissionDenied, match="separation of duties"):
        releases.decide(
            request_id,
            actor=Actor("ana"),
            decision="approve",
            comment=None,
            expected_holder=None,
        )
    request, moved = releases.decide(
        request_id[:8], actor=Actor("ben"), decision="approve", comment="ok", expected_holder=None
    )
    assert request.status == "approved" and moved is not None and moved.version == 1
    with pytest.raises(Conflict, match="not pending"):
        releases.decide(
            request_id, actor=Actor("cy"), decision="approve", comment=None, expected_holder=1
        )
    kinds = [e.kind for e in store.audit.events()]
    assert kinds[-4:] == ["gates.evaluated", "release.requested", "release.approved", "alias.moved"]


def test_a_conflicting_final_approval_changes_nothing(store: SqlMetadataStore) -> None:
    _versions(store, 2)
    request_id = _request(store, 2)
    store.releases.move_alias(
        "flights", "production", 1, expected_holder=None, actor="ana", reason=None
    )
    before = store.audit.head()
    with pytest.raises(Conflict, match="changed while this promotion was decided"):
        store.releases.decide(
            request_id, actor=Actor("ben"), decision="approve", comment=None, expected_holder=None
        )
    assert store.audit.head() == before  # the approval rolled back with the move
    assert store.releases.request(request_id).approvals == ()


def test_expired_requests_take_no_decisions(store: SqlMetadataStore) -> None:
    _versions(store, 1)
    request_id = _request(store)
    later = datetime.now(UTC) + timedelta(days=2)
    with pytest.raises(Conflict, match="expired"):
        store.releases.decide(
            request_id,
            actor=Actor("ben"),
            decision="approve",
            comment=None,
            expected_holder=None,
            now=later,
        )
    closed = store.releases.close_request(
        request_id, status="expired", actor="keel", outcome="expired"
    )
    assert closed.status == "expired"
    with pytest.raises(Conflict, match="already expired"):
        store.releases.close_request(request_id, status="expired", actor="keel", outcome="x")


def _history_of_events(store: SqlMetadataStore) -> None:
    _versions(store, 2)
    _request(store, 2)
    store.releases.move_alias(
        "flights", "production", 1, expected_holder=None, actor="ana", reason="first"
    )


def test_verify_detects_an_edited_event(store: SqlMetadataStore, metadata_url: str) -> None:
    _history_of_events(store)
    assert store.audit.verify().ok
    engine = create_metadata_engine(metadata_url)
    with engine.begin() as conn:
        conn.execute(update(audit_events).where(audit_events.c.seq == 3).values(actor="mallory"))
    engine.dispose()
    report = store.audit.verify()
    assert not report.ok and report.broken is not None
    assert (report.broken.seq, report.broken.rule) == (3, "edited event")
    assert report.events == 2


def test_verify_detects_an_edited_evidence_field(
    store: SqlMetadataStore, metadata_url: str
) -> None:
    _history_of_events(store)
    engine = create_metadata_engine(metadata_url)
    with engine.begin() as conn:
        conn.execute(
            update(audit_events)
            .where(audit_events.c.kind == "gates.evaluated")
            .values(evidence='{"passed":true}')
        )
    engine.dispose()
    broken = store.audit.verify().broken
    assert broken is not None and broken.rule == "edited event"


def test_verify_detects_a_deleted_event(store: SqlMetadataStore, metadata_url: str) -> None:
    _history_of_events(store)
    seq = next(e.seq for e in store.audit.events() if e.kind == "gates.evaluated")
    engine = create_metadata_engine(metadata_url)
    with engine.begin() as conn:
        conn.execute(delete(audit_events).where(audit_events.c.seq == seq))
    engine.dispose()
    broken = store.audit.verify().broken
    assert broken is not None and (broken.seq, broken.rule) == (seq, "missing event")


def test_verify_detects_deleted_newest_events(store: SqlMetadataStore, metadata_url: str) -> None:
    _history_of_events(store)
    head, _ = store.audit.head()
    engine = create_metadata_engine(metadata_url)
    with engine.begin() as conn:
        conn.execute(delete(alias_history).where(alias_history.c.seq == head))
        conn.execute(delete(audit_events).where(audit_events.c.seq == head))
    engine.dispose()
    broken = store.audit.verify().broken
    assert broken is not None and (broken.seq, broken.rule) == (head, "missing newest events")


def test_verify_detects_a_rewritten_chain_suffix(
    store: SqlMetadataStore, metadata_url: str
) -> None:
    """Editing an event and re-hashing it (but not its successors) still breaks the link."""
    from keel.domain.audit import event_hash

    _history_of_events(store)
    target = store.audit.events()[1]
    forged = event_hash(
        target.prev_hash,
        seq=target.seq,
        at=target.at,
        actor="mallory",
        kind=target.kind,
        model=target.model,
        version=target.version,
        alias=target.alias,
        subject=target.subject,
        reason=target.reason,
        evidence_json=target.evidence_json,
    )
    engine = create_metadata_engine(metadata_url)
    with engine.begin() as conn:
        conn.execute(
            update(audit_events)
            .where(audit_events.c.seq == target.seq)
            .values(actor="mallory", hash=forged)
        )
    engine.dispose()
    broken = store.audit.verify().broken
    assert broken is not None and (broken.seq, broken.rule) == (target.seq + 1, "broken link")


def test_evaluations_keep_their_evidence(store: SqlMetadataStore, metadata_url: str) -> None:
    _versions(store, 1)
    result = GateResult("x", "metric_threshold", False, "low", {"value": 0.5, "min": 0.6})
    evaluation = store.releases.record_evaluation(
        "flights", 1, "production", holder=None, results=[result], actor="ana"
    )
    assert store.releases.evaluation(evaluation) == [result]
    engine = create_metadata_engine(metadata_url)
    with engine.connect() as conn:
        passed = (
            conn.execute(gate_evaluations.select().where(gate_evaluations.c.id == evaluation))
            .one()
            .passed
        )
    engine.dispose()
    assert passed is False


@pytest.mark.slow
def test_racing_promotions_from_separate_processes_one_wins(metadata_url: str) -> None:
    racers = 4
    with open_metadata_store(metadata_url) as store:
        _versions(store, racers)
    barrier = SPAWN.Barrier(racers)
    outcomes = SPAWN.Queue()
    processes = [
        SPAWN.Process(
            target=helpers.promote_racing, args=(metadata_url, "flights", v, barrier, outcomes)
        )
        for v in range(1, racers + 1)
    ]
    for process in processes:
        process.start()
    results = dict(outcomes.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    winners = [v for v, outcome in results.items() if outcome == "won"]
    assert len(winners) == 1, results
    for version, outcome in results.items():
        if version != winners[0]:
            assert "changed while this promotion was decided" in outcome
    with open_metadata_store(metadata_url) as store:
        assert store.releases.holder("flights", "production") == winners[0]
        moves = store.audit.events(kinds=["alias.moved"])
        assert [(e.version, e.actor) for e in moves] == [(winners[0], f"racer-{winners[0]}")]
        report = store.audit.verify()
        assert report.ok, report
        # registrations + the one move, gapless
        assert report.events == racers + 1
