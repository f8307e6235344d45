"""The Spark engine on real Spark: local mode in this process, and a standalone cluster of a
master and two workers on loopback, against the in-process engine on the same data.

The data is the flights example's, from the repository: flights as Parquet parts (several
partitions, so the driver merges), and weather as CSV (the gzipped file itself, with its `NA`
markers, and a folder of plain CSV parts).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from keel.data import read_table
from keel.engines import LocalEngine
from keel.engines.spark import SparkEngine
from keel.project import Project
from keel.stats.drift import DriftResult, compare_sketches
from keel.stats.sketch import MAX_CATEGORIES
from tests.fixtures.cli import Keel
from tests.fixtures.spark import (
    PAUSED_ENGINE_CONF,
    TEST_CONF,
    SparkCluster,
    failing_engine,
    kill_a_paused_executor,
    with_engine,
)

pytestmark = [pytest.mark.spark, pytest.mark.slow]

DATA = Path(__file__).parents[2] / "examples" / "flights" / "data"
FLIGHTS = DATA / "nycflights13_flights.csv.gz"
WEATHER = DATA / "nycflights13_weather.csv.gz"
KEEL = str(Path(sys.executable).with_name("keel"))
#: Statistics from merged partition sketches against one sketch of all rows: a merge adds
#: counts exactly; means and variances differ by float rounding only.
CLOSE = {"rel": 1e-9, "abs": 1e-12}


@pytest.fixture(scope="module")
def flights_parts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """January's first 12,000 flights as three Parquet parts, July's as two."""
    folder = tmp_path_factory.mktemp("flights-parts")
    table = read_table(FLIGHTS)
    for name, month, parts in (("january", 1, 3), ("july", 7, 2)):
        rows = table.filter(pc.equal(table["month"], month)).slice(0, 12_000)
        (folder / name).mkdir()
        size = math.ceil(rows.num_rows / parts)
        for part in range(parts):
            pq.write_table(
                rows.slice(part * size, size),
                folder / name / f"part-{part:05d}.parquet",
                row_group_size=2_000,
            )
    return folder / "january", folder / "july"


@pytest.fixture(scope="module")
def weather_parts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The second half of the year's weather as two plain CSV files (without the time)."""
    folder = tmp_path_factory.mktemp("weather-parts")
    table = read_table(WEATHER).drop_columns(["time_hour"])
    late = table.filter(pc.greater_equal(table["month"], 7))
    half = late.num_rows // 2
    pcsv.write_csv(late.slice(0, half), folder / "part-0.csv")
    pcsv.write_csv(late.slice(half), folder / "part-1.csv")
    return folder


def _assert_same(spark: list[DriftResult], local: list[DriftResult], high: set[str]) -> None:
    """Counts and verdicts exactly, statistics to float rounding; for categories past
    MAX_CATEGORIES, whose merges are approximate by design, the same test and counts."""
    assert [r.column for r in spark] == [r.column for r in local]
    for ours, theirs in zip(spark, local, strict=True):
        mine, expected = ours.to_dict(), theirs.to_dict()
        for key in ("column", "kind", "test", "threshold", "reference_count", "current_count"):
            assert mine[key] == expected[key], (key, mine, expected)
        assert mine["method"] == "sketch"
        if ours.column in high:
            continue
        assert mine["drifted"] == expected["drifted"], (mine, expected)
        for key in ("statistic", "p_value", "score"):
            if expected[key] is None:
                assert mine[key] is None
            else:
                assert mine[key] == pytest.approx(expected[key], **CLOSE), (key, mine, expected)


def _many_categories(source: Path) -> set[str]:
    table = read_table(source)
    return {
        name
        for name in table.column_names
        if pa.types.is_string(table.schema.field(name).type)
        and pc.count_distinct(table[name]).as_py() > MAX_CATEGORIES
    }


def _partitions(source: Path) -> int:
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    assert session is not None
    return int(session.read.parquet(str(source)).rdd.getNumPartitions())


def test_parquet_parts_sketch_as_the_local_engine_does(
    spark_local: str, flights_parts: tuple[Path, Path]
) -> None:
    january, july = flights_parts
    spark = SparkEngine(spark_local, TEST_CONF)
    local = LocalEngine()

    spark_ref, spark_rows = spark.sketch(str(january))
    local_ref, local_rows = local.sketch(str(january))
    spark_cur, _ = spark.sketch(str(july))
    local_cur, _ = local.sketch(str(july))

    # Several partitions, so the driver merged sketches.
    assert _partitions(january) > 1
    assert spark_rows == local_rows == 12_000 == spark_ref.rows
    assert [(c.name, c.kind) for c in spark_ref.columns.values()] == [
        (c.name, c.kind) for c in local_ref.columns.values()
    ]
    for name, column in local_ref.columns.items():
        assert spark_ref.columns[name].nulls == column.nulls, name
    expected = compare_sketches(local_ref, local_cur)
    assert {r.column for r in expected} >= {"dep_delay", "arr_delay", "distance", "carrier"}
    _assert_same(compare_sketches(spark_ref, spark_cur), expected, _many_categories(january))

    # Only the named columns are read and sketched.
    chosen, rows = spark.sketch(str(january), ["dep_delay", "carrier"])
    assert list(chosen.columns) == ["dep_delay", "carrier"] and rows == 12_000


def test_columns_with_dots_in_their_names_sketch_as_the_local_engine_does(
    spark_local: str, tmp_path: Path
) -> None:
    # keel's own logs name columns so (`inputs.distance`); Spark takes such a name for a
    # struct's field unless told otherwise.
    flights = read_table(FLIGHTS).select(["distance", "carrier", "dep_delay"])
    dotted = flights.rename_columns(["inputs.distance", "inputs.carrier", "dep delay.min"])
    folder = tmp_path / "dotted"
    folder.mkdir()
    for part, (start, end) in enumerate(((0, 3_000), (3_000, 6_000))):
        pq.write_table(dotted.slice(start, end - start), folder / f"part-{part}.parquet")

    spark, rows = SparkEngine(spark_local, TEST_CONF).sketch(str(folder))
    local, local_rows = LocalEngine().sketch(str(folder))
    assert rows == local_rows == 6_000
    assert list(spark.columns) == list(local.columns) == dotted.column_names
    _assert_same(compare_sketches(spark, local), compare_sketches(local, local), set())
    chosen, _ = SparkEngine(spark_local, TEST_CONF).sketch(str(folder), ["inputs.carrier"])
    assert list(chosen.columns) == ["inputs.carrier"]


def test_csv_sources_sketch_as_the_local_engine_does(spark_local: str, weather_parts: Path) -> None:
    spark = SparkEngine(spark_local, TEST_CONF)
    local = LocalEngine()
    # The repository's gzipped CSV (NA for missing values) and a folder of two CSV files.
    spark_ref, spark_rows = spark.sketch(str(WEATHER))
    local_ref, local_rows = local.sketch(str(WEATHER))
    spark_cur, _ = spark.sketch(str(weather_parts))
    local_cur, _ = local.sketch(str(weather_parts))

    assert spark_rows == local_rows == 26_115
    assert spark_ref.columns["wind_gust"].nulls == local_ref.columns["wind_gust"].nulls > 0
    expected = compare_sketches(local_ref, local_cur)
    assert {r.column for r in expected} >= {"temp", "pressure", "wind_speed", "origin"}
    _assert_same(compare_sketches(spark_ref, spark_cur), expected, set())


def _local_results(reference: str, current: str) -> list[DriftResult]:
    return compare_sketches(LocalEngine().sketch(reference)[0], LocalEngine().sketch(current)[0])


def _assert_same_document(document: dict[str, Any], expected: list[DriftResult]) -> None:
    high = {"tailnum"}
    columns = {c["column"]: c for c in document["columns"]}
    assert list(columns) == [r.column for r in expected]
    for result in expected:
        mine, theirs = columns[result.column], result.to_dict()
        assert mine["method"] == "sketch"
        assert mine["test"] == theirs["test"]
        assert mine["reference_count"] == theirs["reference_count"]
        assert mine["current_count"] == theirs["current_count"]
        if result.column not in high:
            assert mine["drifted"] == theirs["drifted"]
            assert mine["statistic"] == pytest.approx(theirs["statistic"], **CLOSE)


def test_keel_drift_engine_spark(
    keel: Keel, spark_local: str, flights_parts: tuple[Path, Path], tmp_path: Path
) -> None:
    january, july = flights_parts
    report = tmp_path / "drift.html"
    result = keel(
        "drift", january, july, "--engine", "spark", "--spark-master", spark_local,
        "--report", report, "--json",
    )  # fmt: skip

    document = result.json()
    assert result.code == (1 if document["drifted"] else 0), result.err
    assert document["reference"] == {"source": str(january), "rows": 12_000}
    assert document["current"]["rows"] == 12_000
    _assert_same_document(document, _local_results(str(january), str(july)))
    assert report.is_file() and "dep_delay" in report.read_text()

    # The text report, as with the local engine.
    shown = keel("drift", january, july, "--engine", "spark", "--columns", "dep_delay,carrier")
    assert "dep_delay" in shown.out and "carrier" in shown.out and "tailnum" not in shown.out
    # A column one side lacks names the option, as locally.
    missing = keel("drift", january, july, "--engine", "spark", "--columns", "nope")
    assert missing.code == 2 and "--columns" in missing.err and "nope" in missing.err


def test_keel_yaml_engine_section_and_project_drift(
    keel: Keel, spark_local: str, flights_parts: tuple[Path, Path], tmp_path: Path
) -> None:
    january, july = flights_parts
    folder = tmp_path / "project"
    Project.init(folder, env={"KEEL_USER": "ana"}).close()
    with (folder / "keel.yaml").open("a") as spec:
        spec.write(f"engine:\n  kind: spark\n  master: {spark_local}\n")

    # keel.yaml's engine section is the default of `keel drift` run in the project.
    on_spark = keel("-C", folder, "drift", january, july, "--columns", "distance", "--json")
    assert on_spark.json()["columns"][0]["method"] == "sketch", on_spark.err
    # --engine local overrides it: today's exact comparison.
    exact = keel(
        "-C", folder, "drift", january, july, "--columns", "distance", "--engine", "local",
        "--json",
    )  # fmt: skip
    assert exact.json()["columns"][0]["method"] == "exact", exact.err

    with Project.open(folder, env={"KEEL_USER": "ana"}) as project:
        compared = project.drift(str(january), str(july), columns=["distance", "carrier"])
        assert [r.method for r in compared.results] == ["sketch", "sketch"]
        assert compared.reference_rows == compared.current_rows == 12_000
        exactly = project.drift(str(january), str(july), columns=["distance"], engine="local")
        assert [r.method for r in exactly.results] == ["exact"]


def test_a_file_spark_cannot_parse_exits_2_naming_it_and_writes_nothing(
    keel: Keel, spark_local: str, flights_parts: tuple[Path, Path], tmp_path: Path
) -> None:
    january, _ = flights_parts
    bad = tmp_path / "bad"
    bad.mkdir()
    # The third line has one field: the task that meets it fails, as the in-process reader
    # refuses the file (exit 2 on both engines: the data is wrong, not the engine).
    (bad / "part-0.csv").write_text("dep_delay,carrier\n1,UA\n2\n3,AA\n")
    (tmp_path / "corrupt.parquet").write_bytes(b"PAR1 not parquet at all")
    report = tmp_path / "drift.html"

    ragged = keel("drift", january, bad, "--engine", "spark", "--report", report, "--json")
    assert ragged.code == 2, ragged.out + ragged.err
    error = ragged.json()["error"]
    assert error["code"] == "data_error"
    assert error["message"].startswith(f"{bad}: Spark cannot read it: ")
    assert "part-0.csv" in error["message"] and "Malformed CSV record" in error["message"]
    corrupt = keel("drift", january, tmp_path / "corrupt.parquet", "--engine", "spark")
    assert corrupt.code == 2 and "is not a Parquet file" in corrupt.err
    assert not report.exists()


def _keel(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    environ |= {"KEEL_USER": "ana", **(env or {})}
    return subprocess.Popen(
        [KEEL, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )


def test_a_failed_spark_job_exits_10_naming_spark_and_writes_nothing(
    flights_parts: tuple[Path, Path], tmp_path: Path
) -> None:
    """Executors whose Python lacks keel: every partition's task raises on import."""
    january, july = flights_parts
    folder = tmp_path / "project"
    Project.init(folder, env={"KEEL_USER": "ana"}).close()
    with_engine(folder, failing_engine(tmp_path))
    report = tmp_path / "drift.html"
    process = _keel("-C", folder, "drift", january, july, "--report", report, "--json")
    out, err = process.communicate(timeout=420)

    assert process.returncode == 10, out + err
    error = json.loads(out)["error"]
    assert error["code"] == "engine_error"
    assert error["message"].startswith(f"the Spark job sketching {january} failed: ")
    assert "No module named" in error["message"]
    assert "install keelml on every node" in error["hint"]
    assert not report.exists()


# --- a standalone cluster: a master and two workers on loopback --------------------------


def test_on_a_standalone_cluster_results_equal_the_local_engines(
    spark_cluster: SparkCluster, flights_parts: tuple[Path, Path]
) -> None:
    january, july = flights_parts
    process = _keel(
        "drift", january, july, "--engine", "spark", "--spark-master", spark_cluster.master,
        "--json",
    )  # fmt: skip
    out, err = process.communicate(timeout=420)

    document = json.loads(out)
    assert process.returncode == (1 if document["drifted"] else 0), err
    assert document["reference"]["rows"] == document["current"]["rows"] == 12_000
    _assert_same_document(document, _local_results(str(january), str(july)))
    # The job ran on the cluster's executors, not in the driver.
    applications = spark_cluster.state()["completedapps"]
    assert isinstance(applications, list) and applications


def test_an_executor_killed_mid_job_fails_cleanly(
    spark_cluster: SparkCluster, flights_parts: tuple[Path, Path], tmp_path: Path
) -> None:
    january, july = flights_parts
    folder = tmp_path / "project"
    Project.init(folder, env={"KEEL_USER": "ana"}).close()
    with_engine(
        folder, {"kind": "spark", "master": spark_cluster.master, "conf": PAUSED_ENGINE_CONF}
    )
    report = tmp_path / "drift.html"
    process = _keel("-C", folder, "drift", january, july, "--report", report, "--json")
    out, err = kill_a_paused_executor(spark_cluster, process)

    assert process.returncode == 10, out + err
    error = json.loads(out)["error"]
    assert error["code"] == "engine_error"
    assert error["message"].startswith(f"the Spark job sketching {january} failed: ")
    assert "lost" in error["message"].lower() or "exited" in error["message"].lower()
    assert not report.exists()
