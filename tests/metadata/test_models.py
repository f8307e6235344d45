"""The model registry in the metadata store: the same semantics on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from keel.domain.digest import Digest
from keel.domain.model import ModelRef
from keel.domain.run import Run, new_run_id
from keel.errors import ConfigError, Conflict, NotFound
from keel.metadata import SqlMetadataStore, open_metadata_store
from tests.metadata.helpers import digest_of

CONTRACT: dict[str, Any] = {
    "kind": "keel.inference-contract",
    "version": 1,
    "inputs": [{"name": "distance", "type": "float", "nullable": False}],
    "outputs": [{"name": "prediction", "type": "integer"}],
}


def _run(store: SqlMetadataStore) -> str:
    run = Run(
        id=new_run_id(),
        status="running",
        started_at=datetime.now(UTC),
        user="ana",
        host="box",
        pid=4242,
    )
    return store.runs.start(run).id


def _package(store: SqlMetadataStore, name: str = "pkg") -> Digest:
    digest = digest_of(name)
    store.artifacts.record(digest, size=10, media_type="application/zip", actor="ana")
    return digest


def _register(
    store: SqlMetadataStore, model: str = "flights", **overrides: Any
) -> tuple[str, Digest, Any]:
    run_id = overrides.pop("run_id", None) or _run(store)
    package = overrides.pop("package", None) or _package(store, f"{model}/{run_id}")
    fields: dict[str, Any] = {
        "run_id": run_id,
        "package": package,
        "flavor": "sklearn",
        "inference_contract": CONTRACT,
        "metrics": {"auc": 0.81, "log_loss": 0.4},
        "actor": "ana",
        **overrides,
    }
    return run_id, package, store.models.register(model, **fields)


def test_register_records_every_field_holds_the_package_and_sets_candidate(
    store: SqlMetadataStore,
) -> None:
    run_id, package, version = _register(store)
    assert (version.model, version.version, version.run_id) == ("flights", 1, run_id)
    assert version.package == package and version.flavor == "sklearn"
    assert version.metrics == {"auc": 0.81, "log_loss": 0.4}
    assert version.inference_contract == CONTRACT
    assert version.created_by == "ana" and version.created_at.tzinfo is UTC
    read = store.models.get("flights", 1)
    assert read == version
    assert read.created_at == version.created_at
    assert store.artifacts.holders(package) == ["model:flights/1"]
    assert package in store.artifacts.referenced()
    assert store.artifacts.forget([package]) == 0
    [alias] = store.models.aliases("flights")
    assert (alias.model, alias.name, alias.version, alias.set_by) == (
        "flights",
        "candidate",
        1,
        "ana",
    )


def test_versions_count_up_and_candidate_follows_the_newest(store: SqlMetadataStore) -> None:
    run_id, package, first = _register(store)
    _, _, second = _register(store, run_id=run_id, package=package)
    assert (first.version, second.version) == (1, 2)
    assert store.models.resolve("flights@candidate").version == 2
    assert store.artifacts.holders(package) == ["model:flights/1", "model:flights/2"]
    # No alias: candidate stays; another alias name is set as asked.
    _, _, third = _register(store, alias=None)
    _, _, fourth = _register(store, alias="staging")
    assert (third.version, fourth.version) == (3, 4)
    assert {a.name: a.version for a in store.models.aliases("flights")} == {
        "candidate": 2,
        "staging": 4,
    }
    assert [v.version for v in store.models.versions("flights")] == [4, 3, 2, 1]
    # Another model numbers its own versions from 1.
    assert _register(store, "churn")[2].version == 1


def test_resolve_by_number_alias_latest_and_bare_name(store: SqlMetadataStore) -> None:
    _register(store)
    _register(store, alias=None)
    assert store.models.resolve("flights@1").version == 1
    assert store.models.resolve("flights@candidate").version == 1
    assert store.models.resolve("flights@latest").version == 2
    assert store.models.resolve("flights").version == 2
    assert store.models.resolve(ModelRef("flights", "version", version=2)).version == 2


def test_not_found_names_what_exists(store: SqlMetadataStore) -> None:
    with pytest.raises(NotFound, match="no models are registered yet"):
        store.models.resolve("flights@1")
    _register(store)
    _register(store, "churn")
    with pytest.raises(
        NotFound, match=r"no model 'ghost' is registered \(registered: churn, flights\)"
    ):
        store.models.resolve("ghost")
    with pytest.raises(NotFound, match=r"no version 9 \(its versions: 1\)"):
        store.models.resolve("flights@9")
    _register(store, alias=None)
    with pytest.raises(NotFound, match=r"no version 9 \(its versions: 1 to 2\)"):
        store.models.get("flights", 9)
    with pytest.raises(NotFound, match=r"no alias 'production' \(its aliases: candidate -> 1\)"):
        store.models.resolve("flights@production")
    with pytest.raises(NotFound, match="ghost"):
        store.models.versions("ghost")
    with pytest.raises(NotFound, match="ghost"):
        store.models.aliases("ghost")
    with pytest.raises(ConfigError, match="model reference"):
        store.models.resolve("flights@")


def test_register_refuses_bad_input_and_changes_nothing(store: SqlMetadataStore) -> None:
    run_id = _run(store)
    package = _package(store)
    good: dict[str, Any] = {
        "run_id": run_id,
        "package": package,
        "flavor": "sklearn",
        "inference_contract": CONTRACT,
        "metrics": {"auc": 0.8},
        "actor": "ana",
    }
    bad: list[tuple[type[Exception], str, str, dict[str, Any]]] = [
        (ConfigError, "model name", "Flights", {}),
        (ConfigError, "alias name", "flights", {"alias": "Prod"}),
        (ConfigError, "alias name", "flights", {"alias": "latest"}),
        (ConfigError, "finite", "flights", {"metrics": {"auc": float("nan")}}),
        (ConfigError, "JSON", "flights", {"inference_contract": {"x": object()}}),
        (ConfigError, "flavor", "flights", {"flavor": " "}),
        (ConfigError, "run id", "flights", {"run_id": "nope"}),
        (NotFound, "run .* is not recorded", "flights", {"run_id": new_run_id()}),
        (NotFound, "package .* is not recorded", "flights", {"package": digest_of("absent")}),
    ]
    for error, message, model, changes in bad:
        with pytest.raises(error, match=message):
            store.models.register(model, **{**good, **changes})
    store.runs.finish(run_id, "failed", error="boom")
    with pytest.raises(Conflict, match="failed"):
        store.models.register("flights", **good)
    assert store.models.list_models() == []
    assert store.artifacts.holders(package) == []


def test_list_models_gives_latest_version_count_and_aliases(store: SqlMetadataStore) -> None:
    assert store.models.list_models() == []
    _register(store, "flights")
    _register(store, "flights", alias="staging")
    _register(store, "churn")
    listed = store.models.list_models()
    assert [(m.name, m.latest_version, m.version_count) for m in listed] == [
        ("churn", 1, 1),
        ("flights", 2, 2),
    ]
    assert listed[1].to_dict()["aliases"] == {"candidate": 1, "staging": 2}
    assert listed[1].created_by == "ana"


def test_versions_page_newest_first(store: SqlMetadataStore) -> None:
    for _ in range(7):
        _register(store)
    assert [v.version for v in store.models.versions("flights")] == [7, 6, 5, 4, 3, 2, 1]
    assert [v.version for v in store.models.versions("flights", limit=3)] == [7, 6, 5]
    page = store.models.versions("flights", before=5, limit=3)
    assert [v.version for v in page] == [4, 3, 2]
    assert [v.version for v in store.models.versions("flights", before=2, limit=3)] == [1]
    assert store.models.versions("flights", before=1) == []
    with pytest.raises(NotFound):
        store.models.versions("nope", limit=1)


@pytest.mark.load
def test_concurrent_registrations_get_distinct_consecutive_versions(metadata_url: str) -> None:
    workers, per_worker = 3, 5
    stores = [open_metadata_store(metadata_url) for _ in range(workers)]
    try:
        run_id = _run(stores[0])
        package = _package(stores[0])
        barrier = threading.Barrier(workers)
        got: list[int] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def work(store: SqlMetadataStore) -> None:
            try:
                barrier.wait(timeout=30)
                for _ in range(per_worker):
                    version = store.models.register(
                        "flights",
                        run_id=run_id,
                        package=package,
                        flavor="sklearn",
                        inference_contract=CONTRACT,
                        metrics={},
                        actor="ana",
                    )
                    with lock:
                        got.append(version.version)
            except BaseException as exc:  # noqa: BLE001 - reported below, with the others
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(s,)) for s in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        total = workers * per_worker
        assert sorted(got) == list(range(1, total + 1))
        assert [v.version for v in stores[0].models.versions("flights")] == list(
            range(total, 0, -1)
        )
        assert len(stores[0].artifacts.holders(package)) == total
        assert stores[0].models.resolve("flights@candidate").version in got
    finally:
        for store in stores:
            store.close()
