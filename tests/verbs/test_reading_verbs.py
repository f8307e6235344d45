"""The verbs behind `keel models`, `keel runs`, `keel data list|show` and `keel predictions
stats`: the CLI's `--json` is the verb's result document, on SQLite and on PostgreSQL, and a
Python user gets the same with the same checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel import (
    ArtifactList,
    DatasetDetail,
    Datasets,
    ModelDetail,
    Models,
    PredictionStats,
    RunDetail,
    Runs,
    SignedModel,
    Tokens,
    Users,
    Webhooks,
)
from keel.errors import ConfigError, NotFound
from tests.fixtures.cli import Keel
from tests.fixtures.trained import MODEL, write_spec
from tests.verbs.test_verbs import NO_APPROVALS, Calls, _document, _open, _same, calls, flights

__all__ = ["calls", "flights"]  # fixtures shared with test_verbs.py


def test_model_verbs_print_their_results(keel: Keel, flights: Path, calls: Calls) -> None:
    listed = keel("-C", flights, "models", "list", "--json")
    assert listed.code == 0, listed.err
    found = _same(listed, calls, "models", Models).models
    assert [m["name"] for m in found] == [MODEL] and found[0]["latest_status"] == "usable"

    shown = keel("-C", flights, "models", "show", MODEL, "--json")
    assert shown.code == 0, shown.err
    detail = _same(shown, calls, "model", ModelDetail)
    assert detail.model is not None and detail.version is None
    assert [v["version"] for v in detail.model["versions"]][-1] == 1

    one = keel("-C", flights, "models", "show", f"{MODEL}@1", "--json")
    assert one.code == 0, one.err
    version = _same(one, calls, "model", ModelDetail)
    assert version.registered is not None and version.registered.version == 1
    assert version.version is not None and version.version["status"] == "usable"

    signed = keel("-C", flights, "models", "sign", f"{MODEL}@1", "--json")
    assert signed.code == 0, signed.err
    kept = _same(signed, calls, "sign_model", SignedModel)
    assert kept.signed is False and kept.key_id  # trained and signed already: unchanged

    with _open(flights) as project:
        assert project.models().models == found
        assert project.model(f"{MODEL}@1").to_dict() == version.to_dict()
        with pytest.raises(NotFound, match="nope"):
            project.model("nope")
        with pytest.raises(NotFound, match="99"):
            project.model(f"{MODEL}@99")
        with pytest.raises(ConfigError):
            project.model("bad name@1")
        with pytest.raises(ConfigError) as bare:
            project.sign_model(MODEL)
        assert [field for field, _ in bare.value.problems] == ["ref"]
    refused = keel("-C", flights, "models", "sign", MODEL)
    assert refused.code == 2 and "name a version" in refused.err


def test_run_verbs_print_their_results(keel: Keel, flights: Path, calls: Calls) -> None:
    listed = keel("-C", flights, "runs", "list", "--json")
    assert listed.code == 0, listed.err
    found = _same(listed, calls, "runs", Runs)
    assert found.runs and found.reaped == []
    done = keel("-C", flights, "runs", "list", "--status", "completed", "--limit", "1", "--json")
    assert [r.status for r in _same(done, calls, "runs", Runs).runs] == ["completed"]

    newest = found.runs[0]
    shown = keel("-C", flights, "runs", "show", newest.id[:24], "--json")
    assert shown.code == 0, shown.err
    detail = _same(shown, calls, "run", RunDetail)
    assert detail.run.id == newest.id and detail.params and detail.steps

    with _open(flights) as project:
        assert [r.id for r in project.runs().runs] == [r.id for r in found.runs]
        assert project.run(newest.id).to_dict() == detail.to_dict()
        with pytest.raises(ConfigError) as bad:
            project.runs(status="done")  # type: ignore[arg-type]
        assert [field for field, _ in bad.value.problems] == ["status"]
        with pytest.raises(ConfigError) as none:
            project.runs(limit=0)
        assert [field for field, _ in none.value.problems] == ["limit"]
        with pytest.raises(NotFound, match="ffffff"):
            project.run("ffffff")


def test_dataset_verbs_print_their_results(keel: Keel, flights: Path, calls: Calls) -> None:
    listed = keel("-C", flights, "data", "list", "--json")
    assert listed.code == 0, listed.err
    versions = _same(listed, calls, "datasets", Datasets).versions
    assert versions

    shown = keel("-C", flights, "data", "show", "latest", "--json")
    assert shown.code == 0, shown.err
    detail = _same(shown, calls, "dataset", DatasetDetail)
    assert detail.version.id == versions[0].id and detail.parquet_size > 0
    assert [c.name for c in detail.profile.columns] == [name for name, _ in detail.version.columns]

    with _open(flights) as project:
        assert project.datasets(limit=1).versions == versions[:1]
        assert project.dataset(versions[0].short).to_dict() == detail.to_dict()
        with pytest.raises(NotFound, match="ffffff"):
            project.dataset("ffffff")
        with pytest.raises(ConfigError) as bad:
            project.datasets(limit=0)
        assert [field for field, _ in bad.value.problems] == ["limit"]


def test_prediction_stats_prints_its_result(keel: Keel, flights: Path, calls: Calls) -> None:
    empty = keel("-C", flights, "predictions", "stats", "--json")
    assert empty.code == 0, empty.err
    assert _same(empty, calls, "prediction_stats", PredictionStats).models == []

    write_spec(flights, NO_APPROVALS)
    with _open(flights) as project:
        assert project.promote(f"{MODEL}@1", "production").outcome == "promoted"
        scored = project.predict_batch(
            flights / "raw.parquet", flights / "out.parquet", f"{MODEL}@production"
        )
    counted = keel("-C", flights, "predictions", "stats", "--json")
    assert counted.code == 0, counted.err
    [entry] = _same(counted, calls, "prediction_stats", PredictionStats).models
    assert (entry.model, entry.version, entry.rows) == (MODEL, 1, scored.rows)
    with _open(flights) as project:
        assert project.prediction_stats().to_dict() == {"models": [entry.to_dict()]}


def test_user_token_and_webhook_lists_print_their_results(
    keel: Keel, flights: Path, calls: Calls
) -> None:
    with _open(flights) as project:
        project.add_user("dee", roles=["approver"])
        made = project.create_token("dee", label="ci")
        hook = project.add_webhook("https://ops.example.com/keel", events=["alias.moved"])
    people = keel("-C", flights, "users", "list", "--json")
    assert people.code == 0, people.err
    assert "dee" in [u["name"] for u in _same(people, calls, "users", Users).users]
    held = keel("-C", flights, "tokens", "list", "--user", "dee", "--json")
    assert held.code == 0, held.err
    assert [t["id"] for t in _same(held, calls, "tokens", Tokens).tokens] == [made.token["id"]]
    hooks = keel("-C", flights, "webhooks", "list", "--json")
    assert hooks.code == 0, hooks.err
    listed = _same(hooks, calls, "webhooks", Webhooks).webhooks
    assert [h.id for h in listed] == [hook.webhook.id]
    assert "secret" not in hooks.json()["webhooks"][0]

    with _open(flights) as project:
        assert [t["label"] for t in project.tokens(user="dee").tokens] == ["ci"]
        with pytest.raises(NotFound, match="nobody"):
            project.tokens(user="nobody")
        with pytest.raises(ConfigError) as bad:
            project.tokens(user="bad name")
        assert "bad name" in bad.value.message
        assert _document(project.webhooks().to_dict()) == _document(hooks.json())
        assert _document(project.users().to_dict()) == _document(people.json())


def test_list_artifacts_prints_its_result(keel: Keel, flights: Path, calls: Calls) -> None:
    listed = keel("-C", flights, "artifacts", "list", "--json")
    assert listed.code == 0, listed.err
    stored = _same(listed, calls, "list_artifacts", ArtifactList).artifacts
    assert stored and any(row["holders"] for row in stored)
    one = keel("-C", flights, "artifacts", "list", "--limit", "1", "--json")
    assert [r["digest"] for r in _same(one, calls, "list_artifacts", ArtifactList).artifacts] == [
        stored[0]["digest"]
    ]
    with _open(flights) as project:
        assert project.list_artifacts().artifacts == stored
        with pytest.raises(ConfigError) as bad:
            project.list_artifacts(limit=0)
        assert [field for field, _ in bad.value.problems] == ["limit"]
