"""Training-serving skew on a trained flights project whose requests went through keel's real
batch scoring (`keel.serving.batch.predict_batch`, the path `keel predict-batch` takes).

One project is shared by the module, each version with its own requests:
v1 got training rows exactly as they are offline; v2 the same kind of rows from a broken online
weather pipeline (temp in Celsius for 30% of them, wind_speed missing for 10%); v3 rows that
only a later snapshot of the source holds. `keel skew` only reads, so sharing is safe.
"""

from __future__ import annotations

import hashlib
import math
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from keel.monitoring.skew import (
    EXAMPLES,
    FeatureSkew,
    RowSkewReport,
    distribution_skew,
    row_skew,
)
from keel.monitoring.skew.rows import _compare
from keel.project import Project
from keel.serving.batch import predict_batch
from tests.fixtures.cli import Keel
from tests.fixtures.trained import BASE, MODEL, write_spec

KEY = ["carrier", "flight", "time_hour"]
ROWS = 1_000
CELSIUS = 300  # v2 rows whose temp was served in Celsius
NO_WIND = 100  # v2 rows whose wind_speed was not served
LATER = 200  # v3 rows only a later snapshot holds
ENV = {"KEEL_USER": "ana"}


@dataclass(frozen=True)
class Logged:
    folder: Path
    start: datetime
    end: datetime
    later_dataset: str
    celsius_keys: frozenset[tuple[object, ...]]


def _score(project: Project, table: pa.Table, folder: Path, name: str, version: int) -> None:
    source = folder / f"{name}.parquet"
    pq.write_table(table, source)
    predict_batch(project, source, folder / f"{name}-scored.parquet", f"{MODEL}@{version}")


def _set(table: pa.Table, name: str, values: object) -> pa.Table:
    # from_pandas: NaN becomes null, a value the request does not carry.
    array = values if isinstance(values, pa.ChunkedArray) else pa.array(values, from_pandas=True)
    return table.set_column(table.column_names.index(name), name, array)


@pytest.fixture(scope="module")
def logged(trained_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Logged:
    folder = tmp_path_factory.mktemp("skew") / "flights"
    shutil.copytree(trained_template, folder)
    write_spec(folder, data={**BASE["data"], "entity_key": KEY})  # type: ignore[dict-item]
    raw = pq.read_table(folder / "raw.parquet")
    rng = np.random.default_rng(7)
    # The time split holds out the newest 20% of the (time-sorted) rows: requests are drawn
    # from the training rows, so their feature distributions are the training ones.
    training = int(raw.num_rows * 0.75)
    exact_rows, broken_rows = np.split(rng.choice(training, 2 * ROWS, replace=False), 2)

    start = datetime.now(UTC) - timedelta(seconds=1)
    with Project.open(folder, env=ENV) as project:
        _score(project, raw.take(np.sort(exact_rows)), folder, "exact", 1)

        broken = raw.take(np.sort(broken_rows))
        temp = broken["temp"].to_numpy(zero_copy_only=False).copy()
        wind = broken["wind_speed"].to_numpy(zero_copy_only=False).copy()
        celsius = rng.choice(np.flatnonzero(~np.isnan(temp)), CELSIUS, replace=False)
        no_wind = rng.choice(np.flatnonzero(~np.isnan(wind)), NO_WIND, replace=False)
        temp[celsius] = (temp[celsius] - 32) * 5 / 9
        wind[no_wind] = np.nan
        broken = _set(_set(broken, "temp", temp), "wind_speed", wind)
        keys = broken.select(KEY).take(pa.array(celsius)).to_pylist()
        _score(project, broken, folder, "broken", 2)

        # Flights a year later: in no dataset until the source is snapshotted again.
        later = raw.take(np.sort(rng.choice(training, LATER, replace=False)))
        later = _set(later, "year", np.full(LATER, 2014))
        later = _set(later, "time_hour", pc.add(later["time_hour"], pa.scalar(timedelta(days=365))))
        pq.write_table(pa.concat_tables([raw, later]), folder / "raw-later.parquet")
        later_dataset = project.snapshot(str(folder / "raw-later.parquet")).version.id
        _score(project, later, folder, "later", 3)
    end = datetime.now(UTC) + timedelta(seconds=1)
    return Logged(
        folder=folder,
        start=start,
        end=end,
        later_dataset=str(later_dataset),
        celsius_keys=frozenset(
            (k["carrier"], k["flight"], k["time_hour"].isoformat()) for k in keys
        ),
    )


def _rows(logged: Logged, version: int, **options: object) -> RowSkewReport:
    with Project.open(logged.folder, env=ENV) as project:
        return row_skew(
            project,
            MODEL,
            start=logged.start,
            end=logged.end,
            version=version,
            **options,  # type: ignore[arg-type]
        )


def _by_name(report: RowSkewReport) -> dict[str, FeatureSkew]:
    return {feature.feature: feature for feature in report.features}


def test_requests_equal_to_offline_rows_have_no_mismatch(logged: Logged) -> None:
    report = _rows(logged, 1)

    assert (report.model, report.version, report.entity_key) == (MODEL, 1, tuple(KEY))
    assert report.source_is_training
    assert report.predictions == report.compared == ROWS
    assert report.without_key == report.without_match == report.ambiguous == 0
    features = _by_name(report)
    assert {"temp", "wind_speed", "carrier", "dep_minute_of_day", "day_of_week"} <= set(features)
    assert all(f.compared == ROWS and f.mismatches == 0 for f in report.features), [
        (f.feature, f.mismatches) for f in report.features if f.mismatches
    ]
    assert report.max_mismatch_rate == 0.0 and report.above(0.0) == []


def test_a_broken_online_pipeline_shows_on_exactly_the_features_it_broke(logged: Logged) -> None:
    report = _rows(logged, 2)

    assert report.compared == ROWS
    rates = {f.feature: f.mismatch_rate for f in report.features}
    assert rates.pop("temp") == CELSIUS / ROWS
    assert rates.pop("wind_speed") == NO_WIND / ROWS
    assert set(rates.values()) == {0.0}
    features = _by_name(report)
    wind = features["wind_speed"]
    assert (wind.missing_online, wind.missing_offline) == (NO_WIND, 0)
    assert all(e.online is None and e.offline is not None for e in wind.examples)
    temp = features["temp"]
    assert temp.missing_online == 0 and len(temp.examples) == EXAMPLES
    for example in temp.examples:
        assert example.online == pytest.approx((example.offline - 32) * 5 / 9)
        assert set(example.key) == set(KEY)
        assert tuple(example.key[c] for c in KEY) in logged.celsius_keys
    assert [f.feature for f in report.above(0.01)] == ["temp", "wind_speed"]
    document = report.to_dict()
    assert document["features"][0]["examples"] is not None
    assert document["max_mismatch_rate"] == CELSIUS / ROWS


def test_tolerance_and_limit(logged: Logged) -> None:
    # Celsius is far from Fahrenheit at any tolerance under 100%; the limit keeps the newest.
    loose = _rows(logged, 2, tolerance=0.5, limit=400)
    assert loose.predictions == loose.compared == 400
    assert 0 < _by_name(loose)["temp"].mismatches <= 400


def test_distribution_skew_flags_the_changed_feature(logged: Logged) -> None:
    with Project.open(logged.folder, env=ENV) as project:
        broken = {
            r.column: r
            for r in distribution_skew(
                project, MODEL, start=logged.start, end=logged.end, version=2
            )
        }
        exact = {
            r.column: r
            for r in distribution_skew(
                project, MODEL, start=logged.start, end=logged.end, version=1
            )
        }
    assert broken["temp"].drifted
    assert not exact["temp"].drifted
    assert broken["temp"].current_count == ROWS
    assert set(broken) == set(exact) and "dep_minute_of_day" in broken


def test_keel_skew_fails_above_max_mismatch(keel: Keel, logged: Logged) -> None:
    # No version named: v1 and v2 answered as many requests, and the newer one is checked.
    result = keel("-C", logged.folder, "skew", "--model", MODEL, "--since", "1h", "--json")
    assert result.code == 1, result.out + result.err
    document = result.json()
    assert document["version"] == 2 and document["ok"] is False
    assert document["above"] == ["temp", "wind_speed"]
    assert document["rows"]["compared"] == ROWS
    assert "temp" in document["drifted"]
    rates = {f["feature"]: f["mismatch_rate"] for f in document["rows"]["features"]}
    assert rates["temp"] == CELSIUS / ROWS

    relaxed = keel("-C", logged.folder, "skew", "--model", f"{MODEL}@2", "--since", "1h",
                   "--max-mismatch", "0.5")  # fmt: skip
    assert relaxed.code == 0, relaxed.out + relaxed.err
    assert "temp" in relaxed.out and "30.00%" in relaxed.out
    assert "ok: no feature mismatches in more than 50.00% of rows" in relaxed.out


def test_keel_skew_passes_on_exact_rows(keel: Keel, logged: Logged) -> None:
    result = keel("-C", logged.folder, "skew", "--model", MODEL, "--version", "1",
                  "--start", logged.start.isoformat(), "--end", logged.end.isoformat())  # fmt: skip
    assert result.code == 0, result.out + result.err
    assert f"{ROWS:,} of {ROWS:,} requests compared" in result.out
    assert "ok: no feature mismatches" in result.out


def test_rows_newer_than_training_need_a_later_source(keel: Keel, logged: Logged) -> None:
    stale = _rows(logged, 3)
    assert (stale.compared, stale.without_match, stale.features) == (0, LATER, ())

    result = keel("-C", logged.folder, "skew", "--model", MODEL, "--version", "3", "--since", "1h")
    assert result.code == 3, result.out + result.err
    assert f"{LATER:,} have a key dataset" in result.err and "--source" in result.err

    fresh = keel("-C", logged.folder, "skew", "--model", MODEL, "--version", "3", "--since",
                 "1h", "--source", logged.later_dataset, "--json")  # fmt: skip
    assert fresh.code == 0, fresh.out + fresh.err
    rows = fresh.json()["rows"]
    assert rows["compared"] == LATER and rows["source"]["training"] is False
    assert rows["max_mismatch_rate"] == 0.0


def _tree(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.endswith(("-wal", "-shm"))
    }


@pytest.mark.parametrize(
    ("args", "code", "named"),
    [
        (["--model", "no-such-model"], 3, "no-such-model"),
        (["--model", MODEL, "--start", "2001-01-01", "--end", "2001-01-02"], 3, "no predictions"),
        (["--model", MODEL, "--version", "9"], 3, f"{MODEL}@9"),
        (["--model", MODEL, "--entity-key", "late"], 2, "data.entity_key"),
        (["--model", MODEL, "--since", "1h", "--start", "2001-01-01"], 2, "--since"),
        (["--model", MODEL, "--since", "soon"], 2, "--since"),
        (["--model", MODEL, "--source", "ffffffffffff"], 3, "ffffffffffff"),
        (["--model", MODEL, "--test", "t-test"], 2, "t-test"),
        (["--model", MODEL, "--threshold", "0.2"], 2, "threshold needs a test"),
        (["--model", f"{MODEL}@2", "--version", "2"], 2, "--version"),
    ],
)
def test_bad_input_is_named_and_changes_nothing(
    keel: Keel, logged: Logged, args: list[str], code: int, named: str
) -> None:
    before = _tree(logged.folder)
    result = keel("-C", logged.folder, "skew", *args)
    assert result.code == code, result.out + result.err
    assert named in result.err
    assert _tree(logged.folder) == before


def test_no_entity_key_configured(keel: Keel, logged: Logged) -> None:
    spec = (logged.folder / "keel.yaml").read_text()
    write_spec(logged.folder)  # data without entity_key
    try:
        before = _tree(logged.folder)
        result = keel("-C", logged.folder, "skew", "--model", MODEL, "--json")
        assert result.code == 2, result.out
        error = result.json()["error"]
        assert error["problems"][0]["key"] == "data.entity_key"
        assert "data.entity_key" in error["message"]
        assert _tree(logged.folder) == before
    finally:
        (logged.folder / "keel.yaml").write_text(spec)


NAN = math.nan
STAMP = pd.Timestamp("2013-01-01 05:00", tz="UTC")


@pytest.mark.parametrize(
    ("online", "offline", "mismatches"),
    [
        ([1.0, NAN, 2.0, NAN], [1.0, NAN, NAN, 3.0], 2),  # NaN matches NaN only
        ([1.0 + 1e-12, 0.0, 1e6 + 1e-4], [1.0, 1e-12, 1e6], 0),  # within the tolerance
        ([1.0 + 1e-6], [1.0], 1),
        ([math.inf, -math.inf, math.inf], [math.inf, -math.inf, -math.inf], 1),
        ([1, 2, 3], [1.0, 2.0, 3.5], 1),  # integers and floats compare as numbers
        (["a", None, "b", None], ["a", None, "c", "d"], 2),  # missing matches missing only
        ([STAMP, None], [STAMP, STAMP], 1),
    ],
)
def test_matching_rules(online: list[object], offline: list[object], mismatches: int) -> None:
    n = len(online)
    keys = pd.DataFrame({"k": range(n)})
    result = _compare(
        "f", pd.Series(online), pd.Series(offline), 1e-9, keys, ("k",), [f"id{i}" for i in range(n)]
    )
    assert (result.compared, result.mismatches) == (n, mismatches)
    assert [e.prediction_id for e in result.examples] == [
        f"id{i}" for i in range(n) if not _same(online[i], offline[i])
    ]


def _same(a: object, b: object) -> bool:
    missing = [x is None or (isinstance(x, float) and math.isnan(x)) for x in (a, b)]
    if any(missing):
        return all(missing)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) or a == b
    return a == b
