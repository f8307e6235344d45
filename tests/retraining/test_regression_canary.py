"""Canary analysis of a regressor, on SQLite and PostgreSQL: a regressor logs no probability,
and the analysis still measures rmse on each slot's labelled predictions (it failed with
"Data type null is not supported in join non-key field outputs.probability")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml

from keel.monitoring.feedback import ingest
from keel.pipeline.train import train
from keel.project import Project
from keel.retraining.canary import analyze_canary
from keel.retraining.canary.criteria import performance_tolerance
from tests.retraining.test_regression_loop import MODEL, _bikes, _project, _spec
from tests.serving.support import Client, serve


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    values = {"KEEL_USER": "ana"}
    if request.param == "postgresql":
        values["KEEL_DB_URL"] = request.getfixturevalue("fresh_postgres_url")
    return values


def _records(table: pa.Table) -> list[dict[str, object]]:
    rows = table.drop(["cnt"]).to_pylist()
    for row in rows:
        row["at"] = row["at"].isoformat()
    return rows


def test_a_regressor_on_canary_is_judged_on_rmse(env: dict[str, str], tmp_path: Path) -> None:
    bikes = _bikes()
    history = bikes.filter(pc.less(pc.year(bikes["at"]), 2012))
    history = history.take(pa.array(range(0, history.num_rows, 8)))
    traffic = bikes.filter(pc.greater_equal(pc.year(bikes["at"]), 2012)).slice(0, 400)
    folder = tmp_path / "rentals"
    spec = _spec(
        serving={"canary_share": 0.5},
        retraining={"canary": {"duration": "1h", "min_predictions": 50}},
    )
    _project(folder, env, history, spec)
    as_of = pc.max(history["at"]).as_py() + timedelta(days=1)
    with Project.open(folder, env=env) as project:
        assert train(project, as_of=as_of).registered is not None
    spec["training"]["params"] = {"depth": 6}
    (folder / "keel.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    with Project.open(folder, env=env) as project:
        assert train(project, as_of=as_of).registered is not None
        releases = project.metadata.releases
        for alias, version in (("production", 1), ("canary", 2)):
            releases.move_alias(
                MODEL, alias, version, expected_holder=None, actor="ana", reason="test"
            )
        ids: list[str] = []
        records = _records(traffic)
        with serve(project) as (url, serving), Client(url) as client:
            # Requests of 10 rows: the canary is drawn per request, so 40 draws give both
            # slots their share every run (8 draws of 50 rows sometimes gave one slot 1).
            for start in range(0, len(records), 10):
                answer = client.post("/predict", {"records": records[start : start + 10]})
                assert answer.status == 200, answer.text
                ids.extend(p["id"] for p in answer.json()["predictions"])
            serving.log.flush()
        labels = pa.table({"prediction_id": ids, "label": traffic["cnt"]})
        ingest(project, labels, model=MODEL, actor="counter")

        analysis = analyze_canary(project, MODEL, now=datetime.now(UTC) + timedelta(hours=2))

    assert analysis.metric == "rmse"
    for slot in (analysis.canary_slot, analysis.production_slot):
        assert slot.labelled > 50 and slot.performance is not None, slot
    assert analysis.canary_slot.version == 2 and analysis.production_slot.version == 1
    # Unset, the tolerance is in the metric's own units: 5% of production's rmse, not the
    # 0.02 that suits an AUC (0.02 rentals an hour would roll back on any noise).
    performance = analysis.criterion("performance")
    assert performance is not None and performance.judged
    production = analysis.production_slot.performance
    assert production is not None
    assert performance.limit == pytest.approx(-0.05 * production)
    assert "5% of production's rmse" in performance.detail


@pytest.mark.parametrize(
    ("metric", "production", "configured", "expected"),
    [
        ("roc_auc", 0.72, None, -0.02),
        ("brier", 0.18, None, -0.02),
        ("r2", 0.6, None, -0.02),
        ("rmse", 84.6, None, -4.23),
        ("log_loss", 0.55, None, -0.0275),
        ("revenue", 1000.0, None, -50.0),
        ("rmse", 84.6, -5.0, -5.0),
        ("roc_auc", 0.72, -0.05, -0.05),
    ],
)
def test_the_canary_tolerance_is_in_the_metrics_own_units(
    metric: str, production: float, configured: float | None, expected: float
) -> None:
    assert performance_tolerance(metric, production, configured) == pytest.approx(expected)
