"""A version registered unannounced is completed in one transaction, and only once its run
completed with its reference profile recorded: the store's half of `keel train`'s ordered
registration, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from keel.errors import ConfigError, Conflict
from keel.metadata import SqlMetadataStore
from tests.metadata.test_models import CONTRACT, _package, _run


def _unannounced(store: SqlMetadataStore) -> tuple[str, int]:
    run_id = _run(store)
    version = store.models.register(
        "flights",
        run_id=run_id,
        package=_package(store, run_id),
        flavor="sklearn",
        inference_contract=CONTRACT,
        metrics={"auc": 0.8},
        actor="ana",
        alias=None,
        announce=False,
    )
    return run_id, version.version


def test_completion_waits_for_the_run_and_the_profile(store: SqlMetadataStore) -> None:
    run_id, number = _unannounced(store)
    assert store.audit.events(kinds=["model.registered"]) == []
    assert store.models.aliases("flights") == []

    with pytest.raises(Conflict, match=rf"its run {run_id} is running; it has no reference"):
        store.models.complete_registration("flights", number, alias="candidate", actor="ana")
    store.runs.finish(run_id, "completed")
    with pytest.raises(Conflict, match=r"flights@1: it has no reference profile"):
        store.models.complete_registration("flights", number, alias="candidate", actor="ana")
    assert store.audit.events(kinds=["model.registered"]) == []

    package = store.models.get("flights", number).package
    store.monitoring.put_reference("flights", number, package, row_count=3, source="rows")
    event = store.models.complete_registration("flights", number, alias="candidate", actor="ana")
    assert (event.kind, event.version, event.alias) == ("model.registered", 1, "candidate")
    assert store.releases.holder("flights", "candidate") == 1
    with pytest.raises(Conflict, match="registered already"):
        store.models.complete_registration("flights", number, alias="candidate", actor="ana")
    assert store.audit.verify().ok


def test_a_failed_run_is_never_completed(store: SqlMetadataStore) -> None:
    run_id, number = _unannounced(store)
    store.runs.finish(run_id, "failed", error="killed")
    with pytest.raises(Conflict, match=rf"its run {run_id} is failed"):
        store.models.complete_registration("flights", number, alias="candidate", actor="ana")
    assert store.models.aliases("flights") == []


def test_an_alias_needs_an_announced_registration(store: SqlMetadataStore) -> None:
    run_id = _run(store)
    with pytest.raises(ConfigError, match="must be None when announce is false"):
        store.models.register(
            "flights",
            run_id=run_id,
            package=_package(store, run_id),
            flavor="sklearn",
            inference_contract=CONTRACT,
            metrics={},
            actor="ana",
            announce=False,
        )
