"""A classification project made by hand from a CSV with no time column: a sample of the real
2013 New York flights with every time field dropped, the target `late` (arrival more than 15
minutes behind schedule) added, and a row `id` (the entity key). Its own feature and training
code, a random holdout split, a contract inferred from the data (so with no timestamp rule).

    folder = untimed_project(tmp_path / "untimed", env)  # the fixture (tests/fixtures/untimed.py)

Shared by the monitoring and scorecard tests of data without a timestamp. The fixture copies
a project trained once per run and store (`build_untimed_project`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import yaml

from keel.contracts import infer_contract, write_contract
from keel.pipeline.train import train
from keel.predlog.ids import new_prediction_id
from keel.predlog.log import PredictionBatch
from keel.predlog.writer import StoredPredictionLog
from keel.project import Project

FLIGHTS = (
    Path(__file__).parents[2] / "examples" / "flights" / "data" / "nycflights13_flights.csv.gz"
)
MODEL = "untimed"
INPUTS = ["carrier", "flight", "origin", "dest", "distance"]

FEATURES = """\
import pandas as pd


def build(raw: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=raw.index)
    out["distance"] = raw["distance"].astype("float64")
    out["flight"] = raw["flight"].astype("float64")
    for name in ("carrier", "origin", "dest"):
        # A fixed code per value, the same in every batch (a one-row request included).
        out[name] = raw[name].map(lambda v: float(sum(map(ord, str(v))) % 251))
    return out
"""

TRAIN = """\
from sklearn.ensemble import HistGradientBoostingClassifier


def train(ctx, features, target):
    model = HistGradientBoostingClassifier(max_iter=int(ctx.params.get("max_iter", 20)),
                                           random_state=ctx.seed)
    return model.fit(features, target)
"""


def raw_rows(rows: int = 3000, seed: int = 0) -> pa.Table:
    """`rows` flights that arrived, with no time column, their `late` label and an `id`."""
    flights = pcsv.read_csv(FLIGHTS).to_pandas()
    flights = flights[flights["arr_delay"].notna()].sample(rows, random_state=seed)
    table = flights[INPUTS].reset_index(drop=True)
    table.insert(0, "id", range(1, rows + 1))
    table["late"] = (flights["arr_delay"].to_numpy() > 15).astype("int64")
    return pa.Table.from_pandas(table, preserve_index=False)


def spec(**monitoring: Any) -> dict[str, Any]:
    return {
        "name": MODEL,
        "data": {
            "source": "raw.csv",
            "target": "late",
            "contract": "contracts/raw.yaml",
        },
        "features": {"entry_point": "features:build"},
        "training": {
            "entry_point": "train:train",
            "params": {"max_iter": 20},
            "seed": 7,
            "split": {"method": "random", "seed": 1},
        },
        "metrics": ["roc_auc"],
        "monitoring": {"min_rows": 50, **monitoring},
    }


def write_spec(folder: Path, document: dict[str, Any]) -> None:
    (folder / "keel.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def build_untimed_project(folder: Path, env: dict[str, str], **monitoring: Any) -> Path:
    """The project, initialised and trained once (v1 of `untimed`)."""
    Project.init(folder, env=env).close()
    raw = raw_rows()
    pcsv.write_csv(raw, folder / "raw.csv")
    (folder / "features.py").write_text(FEATURES)
    (folder / "train.py").write_text(TRAIN)
    write_contract(infer_contract(raw, source="raw.csv"), folder / "contracts" / "raw.yaml")
    write_spec(folder, spec(**monitoring))
    with Project.open(folder, env=env) as project:
        trained = train(project)
        assert trained.registered is not None and trained.registered.version == 1
    return folder


def log_requests(project: Project, at: datetime, rows: int, *, start: int = 0) -> list[str]:
    """Log `rows` of the raw data as answered requests at `at` (spread over a minute), the
    way serving logs them; the ids, in order."""
    raw = raw_rows().slice(start, rows)
    ids = [new_prediction_id((at + timedelta(seconds=i % 60)).timestamp()) for i in range(rows)]
    distance = np.asarray(raw["distance"].to_pylist(), dtype=float)
    probability = (1 / (1 + np.exp(-(distance - 1000) / 800))).tolist()
    batch = PredictionBatch(
        ids=ids,
        at=at.astimezone(UTC),
        model=MODEL,
        version=1,
        slot="production",
        inputs={name: raw[name].to_pylist() for name in ["id", *INPUTS]},
        outputs={"prediction": [int(p > 0.5) for p in probability], "probability": probability},
        latency_ms=1.0,
    )
    with StoredPredictionLog(project.metadata.predictions) as log:
        log.submit(batch)
    return ids
