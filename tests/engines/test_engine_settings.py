"""Choosing the engine: keel.yaml's `engine:` section, `--engine` and `--spark-master`, and
keel without pyspark. No JVM starts here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from keel.errors import ConfigError
from keel.spec import EngineSpec, parse_spec
from tests.fixtures.cli import Keel

KEEL = str(Path(sys.executable).with_name("keel"))
HEAD = "version: 1\nname: flights\n"


def test_the_engine_section_defaults_to_local() -> None:
    assert parse_spec(HEAD).engine == EngineSpec(kind="local", master=None, conf={})


def test_the_engine_section_reads_master_and_conf() -> None:
    spec = parse_spec(
        HEAD + "engine:\n  kind: spark\n  master: spark://10.0.0.5:7077\n  conf:\n"
        "    spark.executor.memory: 4g\n    spark.sql.adaptive.enabled: true\n"
        "    spark.executor.cores: 2\n"
    )
    assert spec.engine.kind == "spark" and spec.engine.master == "spark://10.0.0.5:7077"
    # As Spark parses them: `true`, not Python's `True`.
    assert spec.engine.spark_conf() == {
        "spark.executor.memory": "4g",
        "spark.sql.adaptive.enabled": "true",
        "spark.executor.cores": "2",
    }
    for master in ("local", "local[2]", "local[*]", "local[4,2]", "yarn", "k8s://https://k:6443"):
        assert parse_spec(HEAD + f"engine:\n  master: '{master}'\n").engine.master == master


@pytest.mark.parametrize(
    ("section", "key", "rule"),
    [
        ("engine:\n  kind: ray\n", "engine.kind", "'local' or 'spark'"),
        ("engine:\n  master: localhost\n", "engine.master", "spark://HOST:PORT"),
        ("engine:\n  master: local[0]\n", "engine.master", "local[N]"),
        ("engine:\n  conf:\n    executor.memory: 4g\n", "engine.conf", "start with 'spark.'"),
        ("engine:\n  conf:\n    spark.master: local\n", "engine.conf", "engine.master"),
        ("engine:\n  conf:\n    spark.x: [1, 2]\n", "engine.conf", ""),
        ("engine:\n  nodes: 3\n", "engine.nodes", ""),
    ],
)
def test_a_bad_engine_section_names_the_key_and_rule(section: str, key: str, rule: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_spec(HEAD + section)
    problems = refused.value.problems
    assert any(found.startswith(key) and rule in text for found, text in problems), problems


@pytest.fixture
def two_files(tmp_path: Path) -> tuple[Path, Path]:
    table = pa.table({"x": [float(i) for i in range(200)], "c": ["a", "b"] * 100})
    pq.write_table(table, tmp_path / "a.parquet")
    pq.write_table(table, tmp_path / "b.parquet")
    return tmp_path / "a.parquet", tmp_path / "b.parquet"


def test_bad_engine_options_exit_2_naming_them(keel: Keel, two_files: tuple[Path, Path]) -> None:
    a, b = two_files
    wrong = keel("drift", a, b, "--engine", "ray")
    assert wrong.code == 2 and "--engine" in wrong.err
    master = keel("drift", a, b, "--engine", "spark", "--spark-master", "localhost:7077")
    assert master.code == 2 and "--spark-master" in master.err and "spark://HOST:PORT" in master.err
    alone = keel("drift", a, b, "--spark-master", "local[2]")
    assert alone.code == 2 and "--spark-master" in alone.err and "--engine spark" in alone.err


def test_a_bad_engine_section_stops_keel_drift_in_the_project(
    keel: Keel, two_files: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = two_files
    project = tmp_path / "project"
    project.mkdir()
    (project / "keel.yaml").write_text(HEAD + "engine:\n  kind: spark\n  master: nowhere\n")
    refused = keel("-C", project, "drift", a, b, "--json")
    assert refused.code == 2
    assert [p["field"] for p in refused.json()["error"]["problems"]] == ["engine.master"]


def test_the_verb_refuses_an_unknown_engine(two_files: tuple[Path, Path]) -> None:
    from keel.verbs import drift

    a, b = two_files
    with pytest.raises(ConfigError) as refused:
        drift(None, str(a), str(b), engine="ray")
    assert refused.value.problems == [("engine", "expected local or spark, got 'ray'")]


def test_without_pyspark_engine_spark_names_the_extra(
    two_files: tuple[Path, Path], tmp_path: Path
) -> None:
    shim = tmp_path / "shim" / "pyspark"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ImportError("pyspark is not installed")\n')
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    environ |= {"KEEL_USER": "ana", "PYTHONPATH": str(shim.parent)}
    a, b = two_files

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KEEL, "drift", str(a), str(b), *args],
            capture_output=True,
            text=True,
            env=environ,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )

    refused = run("--engine", "spark")
    assert refused.returncode == 7, refused.stderr  # a missing optional dependency
    assert "pyspark" in refused.stderr and "keelml[spark]" in refused.stderr
    # keel itself is whole without it: the in-process engine still compares the files.
    same = run("--json")
    assert same.returncode == 0, same.stderr


def test_spark_reads_local_files_by_name_and_urls_as_given(tmp_path: Path) -> None:
    from keel.engines.spark import _paths
    from keel.errors import DataError

    # Local sources: the files keel.data lists, with a scheme (a cluster whose default file
    # system is HDFS still reads them); URLs: as given, Parquet unless named .csv.
    (tmp_path / "part-0.csv").write_text("x\n1\n")
    (tmp_path / "_SUCCESS").write_text("")
    assert _paths(str(tmp_path)) == ([f"file://{tmp_path / 'part-0.csv'}"], "csv")
    assert _paths(f"file://{tmp_path}") == _paths(str(tmp_path))
    assert _paths("s3a://lake/flights/") == (["s3a://lake/flights/"], "parquet")
    assert _paths("dbfs:/mnt/lake/day.csv.gz") == (["dbfs:/mnt/lake/day.csv.gz"], "csv")
    pq.write_table(pa.table({"x": [1]}), tmp_path / "part-1.parquet")
    with pytest.raises(DataError, match=r"mixes CSV .* and Parquet"):
        _paths(str(tmp_path))
    with pytest.raises(DataError, match="no such file"):
        _paths(str(tmp_path / "nope"))


def test_without_java_engine_spark_exits_10_naming_java(
    two_files: tuple[Path, Path], tmp_path: Path
) -> None:
    # JAVA_HOME without a java: Spark's launcher cannot start the JVM.
    (tmp_path / "nojava" / "bin").mkdir(parents=True)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    environ |= {"KEEL_USER": "ana", "JAVA_HOME": str(tmp_path / "nojava")}
    a, b = two_files
    refused = subprocess.run(
        [KEEL, "drift", str(a), str(b), "--engine", "spark", "--json"],
        capture_output=True,
        text=True,
        env=environ,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert refused.returncode == 10, refused.stdout + refused.stderr
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "engine_error"
    assert error["message"].startswith("Spark could not start: ")
    assert "Java 17" in error["hint"]
