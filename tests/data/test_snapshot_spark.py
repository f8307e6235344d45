"""Manifest versions profiled on real Spark (`keel data snapshot --manifest --engine spark`),
against the in-process profile of the same files, on SQLite and PostgreSQL: local mode in
this process and a standalone cluster of two workers on loopback. The lake is the flights
example's rows as monthly Parquet parts (several files per Spark partition, several
partitions); a failed job exits 10 and records nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml

from keel.data.snapshot import load_profile, load_table
from keel.domain.dataset import DatasetVersion
from keel.errors import ConfigError
from keel.project import Project
from keel.stats.profile import Profile
from tests.data.test_snapshot_manifest import DeltaWriter, parquet_objects, write_part
from tests.fixtures.cli import Keel
from tests.fixtures.spark import (
    PAUSED_ENGINE_CONF,
    SparkCluster,
    failing_engine,
    kill_a_paused_executor,
    with_engine,
)

pytestmark = [pytest.mark.spark, pytest.mark.slow]

KEEL = str(Path(sys.executable).with_name("keel"))
COLUMNS = ["month", "day", "carrier", "tailnum", "origin", "dep_delay", "distance", "time_hour"]
#: Few distinct values: their counts are exact whichever way the rows are merged.
FEW = {"carrier", "origin"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    env = {"KEEL_USER": "ana"}
    if request.param == "postgresql":
        env["KEEL_DB_URL"] = request.getfixturevalue("fresh_postgres_url")
    return env


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, flights_table: pa.Table) -> Path:
    """Six months of flights as twelve Parquet parts, two per month."""
    table = flights_table.select(COLUMNS)
    folder = tmp_path_factory.mktemp("lake") / "flights"
    for month in range(1, 7):
        rows = table.filter(pc.equal(table["month"], month)).slice(0, 6_000)
        for half in range(2):
            part = rows.slice(half * 3_000, 3_000)
            write_part(folder / f"month={month:02d}-{half}.parquet", part)
    return folder


def _project(folder: Path, env: dict[str, str], engine: dict[str, object] | None = None) -> Path:
    Project.init(folder, env=env).close()
    spec = folder / "keel.yaml"
    document = yaml.safe_load(spec.read_text(encoding="utf-8"))
    # The source is given to each snapshot; the timestamp column is what matters here.
    document["data"] = {"source": "data/flights.parquet", "timestamp": "time_hour"}
    if engine is not None:
        document["engine"] = engine
    spec.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def in_process(
    lake: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[DatasetVersion, Profile]:
    """The version and profile the in-process engine records of the lake (exact profile)."""
    folder = _project(tmp_path_factory.mktemp("in-process") / "project", {"KEEL_USER": "ana"})
    with Project.open(folder, env={"KEEL_USER": "ana"}) as project:
        version = project.snapshot(str(lake), manifest=True, engine="local").version
        return version, load_profile(project, version)


def _assert_same(
    version: DatasetVersion, profile: Profile, expected: tuple[DatasetVersion, Profile]
) -> None:
    """The version exactly; the profile's counts, nulls, categories, bounds and time bounds
    exactly, its numeric summaries within the number sketch's bound."""
    theirs, whole = expected
    assert version.id == theirs.id
    assert (version.rows, version.columns, version.time_range, version.left_out) == (
        theirs.rows,
        theirs.columns,
        theirs.time_range,
        theirs.left_out,
    )
    assert version.time_range is not None and version.time_range.column == "time_hour"
    assert profile.rows == whole.rows == 36_000
    assert [c.name for c in profile.columns] == [c.name for c in whole.columns]
    for column in whole.columns:
        mine = profile.column(column.name)
        assert (mine.type, mine.kind, mine.count, mine.nulls) == (
            column.type,
            column.kind,
            column.count,
            column.nulls,
        ), column.name
        assert mine.temporal == column.temporal, column.name
        if column.name in FEW:
            assert mine.categorical == column.categorical, column.name
        elif column.categorical is not None:
            # Past the sketch's category limit: the distinct count is a lower bound.
            assert mine.categorical is not None
            assert mine.categorical.distinct <= column.categorical.distinct
        if column.numeric is not None:
            ours, exact = mine.numeric, column.numeric
            assert ours is not None, column.name
            assert (ours.count, ours.non_finite, ours.min, ours.max) == (
                exact.count,
                exact.non_finite,
                exact.min,
                exact.max,
            )
            assert ours.mean == pytest.approx(exact.mean, rel=1e-9)
            assert ours.std == pytest.approx(exact.std, rel=1e-9)
            assert sum(ours.histogram.counts) == exact.count
            for key, value in exact.quantiles.items():
                # The number sketch's relative accuracy (0.5%), or one unit of the data.
                assert ours.quantiles[key] == pytest.approx(value, rel=0.01, abs=1.0), key


def test_a_manifest_profiled_on_spark_local_equals_in_process(
    spark_local: str,
    lake: Path,
    in_process: tuple[DatasetVersion, Profile],
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import keel.data.manifest

    def in_this_process(*args: object) -> None:
        raise AssertionError("profiled in this process, not on Spark")

    folder = _project(tmp_path / "project", env, {"kind": "spark", "master": spark_local})
    with Project.open(folder, env=env) as project:
        monkeypatch.setattr(keel.data.manifest, "scan_manifest", in_this_process)
        # keel.yaml's engine.kind is the default.
        result = project.snapshot(str(lake), manifest=True)
        assert result.reused is False and result.files_read == 12
        version = result.version
        _assert_same(version, load_profile(project, version), in_process)
        assert parquet_objects(project) == 0
        assert project.metadata.datasets.count() == 1
        # What was profiled is what reads back.
        table = load_table(project, version.id)
        assert table.num_rows == 36_000 and table.schema.field("time_hour").type == pa.timestamp(
            "ms", "UTC"
        )

        # An unchanged table is the version recorded before, whichever engine asks.
        monkeypatch.undo()
        again = project.snapshot(str(lake), manifest=True, engine="local")
        assert again.reused is True and again.version.id == version.id

        # A copy is read into keel's store by this process: asked for on Spark, refused by
        # name; keel.yaml's engine.kind leaves it in this process.
        with pytest.raises(ConfigError) as refused:
            project.snapshot(str(lake), engine="spark")
        assert [field for field, _ in refused.value.problems] == ["--engine"]
        with pytest.raises(ConfigError, match="expected local or spark, got 'dask'"):
            project.snapshot(str(lake), manifest=True, engine="dask")
        assert project.metadata.datasets.count() == 1
        copied = project.snapshot(str(lake))
        assert copied.version.parquet is not None and copied.version.rows == 36_000
        assert parquet_objects(project) == 1


def test_keel_data_snapshot_engine_spark(
    keel: Keel, spark_local: str, lake: Path, tmp_path: Path
) -> None:
    folder = _project(tmp_path / "project", {"KEEL_USER": "ana"})
    copy = keel("-C", folder, "data", "snapshot", lake, "--engine", "spark", "--json")
    assert copy.code == 2, copy.out + copy.err
    error = copy.json()["error"]
    assert error["code"] == "config_error" and "--engine" in error["message"]
    assert "--manifest" in error["message"]
    alone = keel("-C", folder, "data", "snapshot", lake, "--manifest", "--spark-master", "local[2]")
    assert alone.code == 2 and "--spark-master" in alone.err and "--engine spark" in alone.err

    ran = keel(
        "-C", folder, "data", "snapshot", lake, "--manifest", "--engine", "spark",
        "--spark-master", spark_local, "--json",
    )  # fmt: skip
    assert ran.code == 0, ran.err
    document = ran.json()
    assert document["reused"] is False and document["version"]["rows"] == 36_000
    assert document["manifest"]["files"] == 12
    shown = keel("-C", folder, "data", "show", "latest")
    assert shown.code == 0 and "36,000" in shown.out and "time_hour" in shown.out

    # A file Spark's task cannot read is bad data, named, as in-process (exit 2).
    broken = tmp_path / "broken"
    broken.mkdir()
    for part in sorted(lake.iterdir())[:3]:
        (broken / part.name).write_bytes(part.read_bytes())
    (broken / "month=99.parquet").write_bytes(b"PAR1 then nothing Parquet can read")
    bad = keel(
        "-C", folder, "data", "snapshot", broken, "--manifest", "--engine", "spark", "--json"
    )  # fmt: skip
    assert bad.code == 2, bad.out + bad.err
    error = bad.json()["error"]
    assert error["code"] == "data_error"
    assert error["message"].startswith(f"{broken}/month=99.parquet: not a valid Parquet file")
    with Project.open(folder, env={"KEEL_USER": "ana"}) as project:
        assert project.metadata.datasets.count() == 1

    # keel.yaml's engine.kind: spark leaves a copy, the default, in this process.
    with_engine(folder, {"kind": "spark", "master": spark_local})
    copied = keel("-C", folder, "data", "snapshot", lake, "--json")
    assert copied.code == 0, copied.out + copied.err
    assert copied.json()["version"]["rows"] == 36_000
    assert copied.json()["version"]["parquet"] is not None


def test_a_delta_version_on_spark_reads_that_versions_files(
    spark_local: str, tmp_path: Path, flights_table: pa.Table
) -> None:
    columns = ["year", "month", "day", "carrier", "flight", "origin", "distance", "time_hour"]
    table = flights_table.select(columns)
    table = table.set_column(7, "time_hour", table["time_hour"].cast(pa.timestamp("ms", "UTC")))
    parts = [table.slice(i * 2_000, 2_000) for i in range(4)]
    delta = DeltaWriter(tmp_path / "flights_delta")
    delta.commit(add={"part-0.parquet": parts[0], "part-1.parquet": parts[1]})
    delta.commit(add={"part-2.parquet": parts[2]}, remove=("part-0.parquet",))
    delta.commit(add={"part-3.parquet": parts[3]})
    env = {"KEEL_USER": "ana"}
    local = _project(tmp_path / "local", env)
    spark = _project(tmp_path / "spark", env, {"kind": "spark", "master": spark_local})
    with Project.open(local, env=env) as one, Project.open(spark, env=env) as other:
        for version in (0, 1):
            expected = one.snapshot(str(delta.root), manifest=True, delta_version=version)
            ours = other.snapshot(str(delta.root), manifest=True, delta_version=version)
            assert ours.manifest == expected.manifest
            assert ours.manifest is not None and ours.manifest.delta_version == version
            assert ours.version.rows == 4_000  # two files of 2,000 rows in either version
            _assert_same_small(
                load_profile(other, ours.version), load_profile(one, expected.version)
            )
            assert ours.version.time_range == expected.version.time_range
        # Version 1 is files 2 and 1: their rows, not version 0's nor the newest.
        flights = {
            (r["month"], r["day"], r["flight"])
            for r in pa.concat_tables([parts[2], parts[1]]).to_pylist()
        }
        assert {
            (r["month"], r["day"], r["flight"])
            for r in load_table(other, ours.version.id).to_pylist()
        } == flights


def _assert_same_small(ours: Profile, exact: Profile) -> None:
    assert ours.rows == exact.rows
    for column in exact.columns:
        mine = ours.column(column.name)
        assert (mine.count, mine.nulls, mine.categorical, mine.temporal) == (
            column.count,
            column.nulls,
            column.categorical,
            column.temporal,
        )
        if column.numeric is not None:
            assert mine.numeric is not None
            assert (mine.numeric.min, mine.numeric.max) == (column.numeric.min, column.numeric.max)
            assert mine.numeric.mean == pytest.approx(column.numeric.mean, rel=1e-9)


def _keel(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")} | env
    return subprocess.run(
        [KEEL, *map(str, args)], capture_output=True, text=True, env=environ, timeout=420
    )


def _stored_objects(folder: Path) -> list[Path]:
    return [path for path in (folder / ".keel" / "artifacts").rglob("*") if path.is_file()]


def test_a_failed_spark_job_exits_10_and_records_nothing(
    lake: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """Executors whose Python lacks keel: every partition's task fails."""
    folder = _project(tmp_path / "project", env, failing_engine(tmp_path))
    before = _stored_objects(folder)
    ran = _keel("-C", folder, "data", "snapshot", lake, "--manifest", "--json", env=env)

    assert ran.returncode == 10, ran.stdout + ran.stderr
    error = json.loads(ran.stdout)["error"]
    assert error["code"] == "engine_error"
    assert error["message"].startswith(f"the Spark job profiling {lake} failed: ")
    assert "install keelml on every node" in error["hint"]
    with Project.open(folder, env=env) as project:
        assert project.metadata.datasets.count() == 0
        assert project.metadata.artifacts.count() == 0
    assert _stored_objects(folder) == before


def test_on_a_standalone_cluster_the_version_equals_in_process(
    spark_cluster: SparkCluster,
    lake: Path,
    in_process: tuple[DatasetVersion, Profile],
    tmp_path: Path,
) -> None:
    env = {"KEEL_USER": "ana"}
    folder = _project(tmp_path / "project", env)
    ran = _keel(
        "-C", folder, "data", "snapshot", lake, "--manifest", "--engine", "spark",
        "--spark-master", spark_cluster.master, "--json",
        env=env,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    with Project.open(folder, env=env) as project:
        version = project.metadata.datasets.resolve("latest")
        assert json.loads(ran.stdout)["version"]["id"] == str(version.id)
        _assert_same(version, load_profile(project, version), in_process)
    # The job ran on the cluster's executors, not in the driver.
    applications = spark_cluster.state()["completedapps"]
    assert isinstance(applications, list) and applications


def test_an_executor_killed_mid_job_exits_10_and_records_nothing(
    spark_cluster: SparkCluster, lake: Path, tmp_path: Path
) -> None:
    env = {"KEEL_USER": "ana"}
    folder = _project(
        tmp_path / "project",
        env,
        {"kind": "spark", "master": spark_cluster.master, "conf": PAUSED_ENGINE_CONF},
    )
    before = _stored_objects(folder)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")} | env
    process = subprocess.Popen(
        [KEEL, "-C", str(folder), "data", "snapshot", str(lake), "--manifest", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )
    out, err = kill_a_paused_executor(spark_cluster, process)

    assert process.returncode == 10, out + err
    error = json.loads(out)["error"]
    assert error["code"] == "engine_error"
    assert error["message"].startswith(f"the Spark job profiling {lake} failed: ")
    with Project.open(folder, env=env) as project:
        assert project.metadata.datasets.count() == 0
        assert project.metadata.artifacts.count() == 0
    assert _stored_objects(folder) == before
