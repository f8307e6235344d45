"""The flights example's user code (examples/flights/project): the weather join, features that do
not depend on the batch, and a model that beats chance on later months and serves from its package.

The modules are imported by path, as keel would import a project's code: the example is not a
package of this repository, and importing it leaves sys.path alone.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest

import keel
from keel.code.entrypoints import entry_point_source
from keel.data import read_table
from keel.metrics import evaluate
from keel.models import load_package, save_package
from keel.spec import MetricSpec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flights"
PROJECT_DIR = EXAMPLE / "project"
DATA_DIR = EXAMPLE / "data"
LEAKING = {"dep_time", "arr_time", "air_time", "dep_delay", "arr_delay"}
#: Training rows sampled from January-August: keeps this test fast (the full data trains in
#: seconds too, but the test runs on every change).
TRAIN_SAMPLE = 60_000
#: The sampled model scores about 0.69 on September-December (0.70 trained on all of
#: January-August); chance is 0.5.
MIN_ROC_AUC = 0.65


def _import_by_path(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"flights_example_{name}", PROJECT_DIR / f"{name}.py"
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
def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    flights = read_table(DATA_DIR / "nycflights13_flights.csv.gz").to_pandas()
    weather = read_table(DATA_DIR / "nycflights13_weather.csv.gz").to_pandas()
    return flights, weather


@pytest.fixture(scope="module")
def raw(features: ModuleType, tables: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return features.prepare(*tables)


# -- prepare -----------------------------------------------------------------------------------


def test_prepare_joins_weather_without_duplicating_flights(
    features: ModuleType, tables: tuple[pd.DataFrame, pd.DataFrame], raw: pd.DataFrame
) -> None:
    flights, _ = tables
    arrived = flights[flights["arr_delay"].notna()]
    assert len(raw) == len(arrived) == 327_346  # the 9,430 cancelled or diverted are dropped
    assert not raw.duplicated(["origin", "time_hour", "carrier", "flight"]).any()
    assert set(features.WEATHER_COLUMNS) <= set(raw.columns)
    assert not LEAKING & set(raw.columns)
    assert str(raw["time_hour"].dtype.tz) == "UTC"
    assert raw["temp"].notna().mean() > 0.99  # nearly every departure hour has an observation
    np.testing.assert_array_equal(raw["late"], (arrived["arr_delay"] > 15).astype(int))
    assert 0.2 < raw["late"].mean() < 0.25


def test_prepare_keeps_the_first_of_duplicated_weather_observations(
    features: ModuleType, tables: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    flights, weather = tables
    some = flights[flights["arr_delay"].notna()].head(50)
    hour = weather[(weather["origin"] == some["origin"].iloc[0])]
    hour = hour[hour["time_hour"] == some["time_hour"].iloc[0]]
    assert len(hour) == 1
    repeated = hour.assign(temp=-40.0)
    doubled = pd.concat([weather, repeated], ignore_index=True)

    rows = features.prepare(some, doubled)

    assert len(rows) == len(some)
    first = rows[
        (rows["origin"] == hour["origin"].iloc[0])
        & (rows["time_hour"] == hour["time_hour"].iloc[0])
    ]
    assert len(first) > 0 and (first["temp"] == hour["temp"].iloc[0]).all()


# -- build -------------------------------------------------------------------------------------


def test_build_gives_a_single_row_the_features_it_gets_in_a_batch(
    features: ModuleType, raw: pd.DataFrame
) -> None:
    batch = raw.sample(5_000, random_state=0)
    no_weather = raw.index[raw["temp"].isna()][:1]  # a departure hour without an observation
    batch = pd.concat([batch, raw.loc[no_weather]])
    built = features.build(batch)

    assert len(built) == len(batch) and built.index.equals(batch.index)
    assert not ({"late"} | LEAKING) & set(built.columns)
    for position in [0, 1, 2, len(batch) - 1]:
        one = batch.iloc[[position]]
        pd.testing.assert_frame_equal(features.build(one), built.iloc[[position]])
        # A request decoded from JSON-like records: plain Python values, no pandas dtypes.
        request = pd.DataFrame(one.to_dict("records"))
        pd.testing.assert_frame_equal(
            features.build(request), built.iloc[[position]].reset_index(drop=True)
        )


def test_build_codes_categories_from_the_fixed_vocabulary(
    features: ModuleType, raw: pd.DataFrame
) -> None:
    row = raw.iloc[[0]].assign(carrier="UA", origin="LGA", dest="ZZZ")  # ZZZ: not in 2013
    built = features.build(row)
    assert built["carrier"].iloc[0] == features.CARRIERS.index("UA")
    assert built["origin"].iloc[0] == features.ORIGINS.index("LGA")
    assert np.isnan(built["dest"].iloc[0])


def test_build_handles_flights_landing_after_midnight(
    features: ModuleType, raw: pd.DataFrame
) -> None:
    row = raw.iloc[[0]].assign(sched_dep_time=2230, hour=22, minute=30, sched_arr_time=115)
    assert features.build(row)["scheduled_block_minutes"].iloc[0] == 165


# -- train, evaluate, package ------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(
    features: ModuleType,
    training: ModuleType,
    raw: pd.DataFrame,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    # A time split by month: train on January-August, evaluate on September-December.
    earlier = raw[raw["month"] <= 8].sample(TRAIN_SAMPLE, random_state=0).sort_index()
    later = raw[raw["month"] > 8]
    project = keel.Project.init(tmp_path_factory.mktemp("flights-project"))
    with project.start_run(params={"max_iter": 200}, seed=7) as ctx:
        model = training.train(ctx, features.build(earlier), earlier["late"])
    return {"model": model, "later": later, "project": project, "run": ctx.run}


def test_train_logs_to_the_run_and_uses_params_and_seed(trained: dict[str, Any]) -> None:
    model, project, run = trained["model"], trained["project"], trained["run"]
    assert model.max_iter == 200 and model.learning_rate == 0.1 and model.random_state == 7
    assert run.status == "completed"
    params = project.metadata.runs.params(run.id)
    assert params["max_leaf_nodes"] == "31" and params["early_stopping"] in ("false", "False")
    logged = {m.key: m.value for m in project.metadata.runs.metrics(run.id)}
    assert logged["train_rows"] == TRAIN_SAMPLE
    assert logged["train_roc_auc"] > MIN_ROC_AUC


def test_model_beats_chance_on_later_months(features: ModuleType, trained: dict[str, Any]) -> None:
    model, later = trained["model"], trained["later"]
    scores = model.predict_proba(features.build(later))[:, 1]
    metrics = evaluate(
        [MetricSpec(name="roc_auc")], later["late"], y_pred=scores > 0.5, y_score=scores
    )
    assert metrics["roc_auc"] > MIN_ROC_AUC, metrics


def test_packaged_model_predicts_from_raw_rows_like_the_trained_one(
    features: ModuleType, trained: dict[str, Any], tmp_path: Path
) -> None:
    model, later = trained["model"], trained["later"]
    code = entry_point_source("features:build", PROJECT_DIR)
    assert [f.path for f in code.files] == ["features.py"]
    package = save_package(tmp_path / "model", model, project_dir=PROJECT_DIR, features=code)

    loaded = load_package(package)

    requests = later.sample(2_000, random_state=1).drop(columns=["late"])
    np.testing.assert_array_equal(
        loaded.predict_proba(requests), model.predict_proba(features.build(requests))
    )
    one = requests.iloc[[0]]
    np.testing.assert_array_equal(loaded.predict_proba(one), loaded.predict_proba(requests)[:1])
