"""Removing an alias, and ending a canary (promoted or rolled back), on both backends:
compare-and-set, one transaction with its audit events, nothing changed on a conflict."""

from __future__ import annotations

import pytest

from keel.errors import ConfigError, Conflict, NotFound
from keel.metadata import SqlMetadataStore
from tests.metadata.test_models import _register

MODEL = "flights"


def _aliases(store: SqlMetadataStore) -> dict[str, int]:
    return {a.name: a.version for a in store.models.aliases(MODEL)}


def _kinds(store: SqlMetadataStore, after: int) -> list[str]:
    return [e.kind for e in store.audit.events(after=after)]


def _setup(store: SqlMetadataStore, production: int = 1, canary: int = 2) -> int:
    """Three versions, `production` and `canary` set; returns the audit head's seq."""
    for _ in range(3):
        _register(store)
    releases = store.releases
    releases.move_alias(
        MODEL, "production", production, expected_holder=None, actor="ana", reason=None
    )
    releases.move_alias(MODEL, "canary", canary, expected_holder=None, actor="ana", reason=None)
    seq, _ = store.audit.head()
    return seq


def test_remove_alias_is_compare_and_set_and_audited(store: SqlMetadataStore) -> None:
    head = _setup(store)
    releases = store.releases
    with pytest.raises(Conflict, match="it was v3 and is now v2; nothing was changed"):
        releases.remove_alias(MODEL, "canary", expected_holder=3, actor="ana", reason="stale")
    with pytest.raises(ConfigError, match="needs a reason"):
        releases.remove_alias(MODEL, "canary", expected_holder=2, actor="ana", reason=" ")
    assert releases.holder(MODEL, "canary") == 2 and _kinds(store, head) == []

    event = releases.remove_alias(
        MODEL, "canary", expected_holder=2, actor="ben", reason="done", evidence={"why": "test"}
    )
    assert (event.kind, event.model, event.version, event.alias) == (
        "alias.removed",
        MODEL,
        2,
        "canary",
    )
    assert (event.actor, event.reason, event.evidence) == (
        "ben",
        "done",
        {"from": 2, "why": "test"},
    )
    assert releases.holder(MODEL, "canary") is None
    assert _aliases(store) == {"production": 1, "candidate": 3}
    # The history shows the removal after the move (read from the audit log).
    history = releases.history(MODEL, "canary")
    assert [(m.kind, m.version) for m in history] == [("move", 2), ("remove", 2)]
    assert history[1].seq == event.seq

    # Removed already: a second remover gets a conflict, not a second event.
    with pytest.raises(Conflict, match="it was v2 and is now no version"):
        releases.remove_alias(MODEL, "canary", expected_holder=2, actor="cy", reason="again")
    with pytest.raises(NotFound):
        releases.remove_alias("nope", "canary", expected_holder=2, actor="cy", reason="x")
    assert _kinds(store, head) == ["alias.removed"]
    # The alias can be set again from nothing.
    releases.move_alias(MODEL, "canary", 3, expected_holder=None, actor="ana", reason=None)
    assert releases.holder(MODEL, "canary") == 3
    assert store.audit.verify().ok


def test_promote_canary_moves_production_and_removes_canary_in_one_step(
    store: SqlMetadataStore,
) -> None:
    head = _setup(store)
    events = store.releases.promote_canary(
        MODEL,
        2,
        expected_production=1,
        actor="keel-canary",
        reason="passed",
        evidence={"verdict": "promote", "predictions": 500},
        evaluation="abc123",
    )
    assert [e.kind for e in events] == ["canary.promoted", "alias.moved", "alias.removed"]
    promoted, moved, removed = events
    assert promoted.evidence == {"verdict": "promote", "predictions": 500}
    assert (promoted.version, promoted.alias) == (2, "canary")
    assert moved.evidence == {
        "from": 1,
        "to": 2,
        "canary_event": promoted.seq,
        "evaluation": "abc123",
    }
    assert (moved.alias, removed.alias, removed.version) == ("production", "canary", 2)
    assert _aliases(store) == {"production": 2, "candidate": 3}
    assert [(m.version, m.previous) for m in store.releases.history(MODEL, "production")] == [
        (1, None),
        (2, 1),
    ]
    assert _kinds(store, head) == ["canary.promoted", "alias.moved", "alias.removed"]
    assert store.audit.verify().ok


@pytest.mark.parametrize(
    ("version", "production", "match"),
    [
        (3, 1, "no longer holds v3 \\(it holds v2\\)"),  # another canary meanwhile
        (2, 3, "it was v3 and is now v1"),  # production moved meanwhile
    ],
)
def test_a_stale_canary_promotion_changes_nothing(
    store: SqlMetadataStore, version: int, production: int, match: str
) -> None:
    head = _setup(store)
    with pytest.raises(Conflict, match=match):
        store.releases.promote_canary(
            MODEL,
            version,
            expected_production=production,
            actor="keel-canary",
            reason="passed",
            evidence={},
        )
    # The canary.promoted event was in the same transaction: gone with it.
    assert _kinds(store, head) == []
    assert _aliases(store) == {"production": 1, "canary": 2, "candidate": 3}
    assert store.audit.verify().ok


def test_roll_back_canary_removes_it_once(store: SqlMetadataStore) -> None:
    head = _setup(store)
    releases = store.releases
    with pytest.raises(ConfigError, match="needs a reason"):
        releases.roll_back_canary(MODEL, 2, actor="keel-canary", reason="", evidence={})
    events = releases.roll_back_canary(
        MODEL, 2, actor="keel-canary", reason="slow", evidence={"latency_ratio": 3.1}
    )
    assert [(e.kind, e.version, e.alias) for e in events] == [
        ("canary.rolled_back", 2, "canary"),
        ("alias.removed", 2, "canary"),
    ]
    assert events[0].evidence == {"latency_ratio": 3.1}
    assert events[1].evidence == {"from": 2, "canary_event": events[0].seq}
    with pytest.raises(Conflict, match="no longer holds v2 \\(it holds no version\\)"):
        releases.roll_back_canary(MODEL, 2, actor="keel-canary", reason="slow", evidence={})
    assert _aliases(store) == {"production": 1, "candidate": 3}
    assert _kinds(store, head) == ["canary.rolled_back", "alias.removed"]
    assert store.audit.verify().ok


def test_a_rollback_never_returns_to_a_canary_that_ended(store: SqlMetadataStore) -> None:
    _setup(store, production=1, canary=2)
    releases = store.releases
    releases.roll_back_canary(MODEL, 2, actor="keel-canary", reason="v2 degraded", evidence={})
    releases.move_alias(MODEL, "canary", 3, expected_holder=None, actor="ana", reason=None)
    assert [m.kind for m in releases.history(MODEL, "canary")] == ["move", "remove", "move"]
    # v2 left canary for good: rolling v3 back has nowhere to go, and nothing changes.
    with pytest.raises(Conflict, match="no previous holder"):
        releases.rollback(MODEL, "canary", actor="ana", reason="v3 too")
    assert releases.holder(MODEL, "canary") == 3
    # Within one canary's life a rollback still steps back.
    _register(store)
    releases.move_alias(MODEL, "canary", 4, expected_holder=3, actor="ana", reason=None)
    event = releases.rollback(MODEL, "canary", actor="ana", reason="v4 worse")
    assert (event.version, releases.holder(MODEL, "canary")) == (3, 3)
