"""`keel contract check --engine spark` on real Spark, against the in-process check.

The data is the flights example's second half with the faults a contract catches
(tests/contracts/support.py `broken`), written as Parquet parts so that several partitions
are merged; the contract is the one inferred from the first half.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from keel.contracts import CheckResult, ContractReport, check_contract, write_contract
from keel.engines.spark_contract import check_source
from keel.project import Project
from tests.contracts.support import NOW, NOW_JULY, broken, first_half, reference_contract
from tests.fixtures.spark import SparkCluster, failing_engine, with_engine

pytestmark = [pytest.mark.spark, pytest.mark.slow]

KEEL = str(Path(sys.executable).with_name("keel"))
NOW_TEXT = NOW.isoformat()


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The broken table as five Parquet parts, and the contract beside them."""
    folder = tmp_path_factory.mktemp("contract-lake")
    table = broken()
    (folder / "broken").mkdir()
    size = 40_000
    for part, start in enumerate(range(0, table.num_rows, size)):
        pq.write_table(
            table.slice(start, size),
            folder / "broken" / f"part-{part:05d}.parquet",
            row_group_size=10_000,
        )
    good = first_half()  # the contract's own reference: it passes, as of July 1st
    (folder / "good").mkdir()
    half = good.num_rows // 2
    pq.write_table(good.slice(0, half), folder / "good" / "part-00000.parquet")
    pq.write_table(good.slice(half), folder / "good" / "part-00001.parquet")
    (folder / "empty").mkdir()
    pq.write_table(good.slice(0, 0), folder / "empty" / "part-00000.parquet")
    write_contract(reference_contract(), folder / "contract.yaml")
    return folder


def _figures(result: CheckResult) -> tuple[Any, ...]:
    """What must not depend on the engine: the rule's verdict, counts and observed values."""
    violation = result.violation
    return (
        result.rule,
        result.column,
        result.status,
        result.reason,
        None if violation is None else (violation.rows, violation.observed, violation.severity),
    )


def _assert_same(spark: ContractReport, local: ContractReport) -> None:
    assert spark.rows == local.rows
    assert [_figures(r) for r in spark.results] == [_figures(r) for r in local.results]
    for mine, theirs in zip(spark.results, local.results, strict=True):
        if mine.violation is None or theirs.violation is None:
            continue
        assert len(mine.violation.samples) == len(theirs.violation.samples), mine.rule
        if mine.rule not in ("duplicate_key", "type_mismatch"):
            # Only these name an example that depends on the order rows are met in.
            assert mine.violation.message == theirs.violation.message


def _offending(result: CheckResult, row: dict[str, Any], repeated: set[tuple[Any, ...]]) -> bool:
    """Whether a sample row breaks the rule it illustrates."""
    column = result.column or ""
    value = row.get(column)
    match result.rule:
        case "new_null_pattern" | "not_nullable" | "null_rate":
            return value is None
        case "above_max":
            return value is not None and value > result.violation.expected  # type: ignore[union-attr]
        case "below_min":
            return value is not None and value < result.violation.expected  # type: ignore[union-attr]
        case "unknown_category":
            return value is not None and value not in result.violation.expected  # type: ignore[union-attr]
        case "type_mismatch":
            return isinstance(value, str) and not value.strip().lstrip("+-").isdigit()
        case "duplicate_key":
            key = tuple(row[name] for name in reference_contract().key)
            return key in repeated
    return True


def test_partitions_judged_on_spark_equal_the_in_process_check(
    spark_local: str, lake: Path
) -> None:
    contract = reference_contract()
    table = broken()
    local = check_contract(table, contract, now=NOW)
    spark = check_source(str(lake / "broken"), contract, now=NOW, master=spark_local)

    _assert_same(spark, local)
    assert len(spark.violations) >= 8  # every kind of figure was merged
    key = list(contract.key)
    counts = table.group_by(key).aggregate([([], "count_all")])
    repeated = {
        tuple(row[name] for name in key)
        for row in counts.filter(pa.compute.greater(counts["count_all"], 1)).to_pylist()
    }
    for result in spark.results:
        if result.violation is None:
            continue
        for row in result.violation.samples:
            assert _offending(result, row, repeated), (result.rule, result.column, row)


def test_a_table_that_passes_and_an_empty_one_judge_alike(spark_local: str, lake: Path) -> None:
    contract = reference_contract()
    good = first_half()
    spark = check_source(str(lake / "good"), contract, now=NOW_JULY, master=spark_local)
    _assert_same(spark, check_contract(good, contract, now=NOW_JULY))
    assert spark.ok and not spark.violations and spark.rows == good.num_rows
    empty = check_source(str(lake / "empty"), contract, now=NOW, master=spark_local)
    _assert_same(empty, check_contract(good.slice(0, 0), contract, now=NOW))
    assert [(v.rule, v.observed) for v in empty.violations if v.rule == "row_count"] == [
        ("row_count", 0)
    ]


def _keel(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KEEL, *map(str, args)], capture_output=True, text=True, timeout=420, env=env
    )


def test_keel_contract_check_engine_spark_on_a_standalone_cluster(
    spark_cluster: SparkCluster, lake: Path, tmp_path: Path
) -> None:
    junit = tmp_path / "junit.xml"
    done = _keel(
        "contract", "check", lake / "broken", "--contract", lake / "contract.yaml",
        "--engine", "spark", "--spark-master", spark_cluster.master,
        "--now", NOW_TEXT, "--junit", junit, "--json",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    local = check_contract(broken(), reference_contract(), now=NOW)
    assert document["ok"] is False
    assert document["rows"] == local.rows
    assert document["checks"] == [
        {"rule": r.rule, "column": r.column, "status": r.status, "reason": r.reason}
        for r in local.results
    ]
    assert [(v["rule"], v["column"], v["rows"]) for v in document["violations"]] == [
        (v.rule, v.column, v.rows) for v in local.violations
    ]
    assert junit.read_text().count("<failure") == len(local.errors)
    # The work ran on the cluster's executors.
    assert spark_cluster.state()["completedapps"]

    passed = _keel(
        "contract", "check", lake / "good", "--contract", lake / "contract.yaml",
        "--engine", "spark", "--spark-master", spark_cluster.master,
        "--now", NOW_JULY.isoformat(),
    )  # fmt: skip
    assert passed.returncode == 0, passed.stdout + passed.stderr


def test_a_failed_spark_job_exits_10_and_writes_no_junit(lake: Path, tmp_path: Path) -> None:
    """Executors whose Python lacks keel: every partition's task raises on import."""
    folder = tmp_path / "project"
    Project.init(folder, env={"KEEL_USER": "ana"}).close()
    with_engine(folder, failing_engine(tmp_path))
    junit = tmp_path / "junit.xml"
    done = _keel(
        "-C", folder, "contract", "check", lake / "broken", "--contract", lake / "contract.yaml",
        "--now", NOW_TEXT, "--junit", junit, "--json",
    )  # fmt: skip
    assert done.returncode == 10, done.stdout + done.stderr
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "engine_error"
    assert error["message"].startswith(f"the Spark job checking {lake / 'broken'} against its")
    assert "install keelml on every node" in error["hint"]
    assert not junit.exists()


def test_a_dataset_version_is_checked_in_process_and_refused_on_spark_by_name(
    lake: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "project"
    with Project.init(folder, env={"KEEL_USER": "ana"}) as project:
        project.snapshot(str(lake / "good"))
    with (folder / "keel.yaml").open("a") as spec:
        spec.write("engine:\n  kind: spark\n  master: local[1]\n")
    contract = lake / "contract.yaml"
    # keel.yaml's engine is for files: the version is read back in this process.
    done = _keel(
        "-C", folder, "contract", "check", "latest", "--contract", contract,
        "--now", NOW_JULY.isoformat(), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["rows"] == first_half().num_rows
    # Asked for by name, Spark refuses it, naming the option.
    done = _keel(
        "-C", folder, "contract", "check", "latest", "--contract", contract,
        "--engine", "spark", "--json",
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    error = json.loads(done.stdout)["error"]
    assert error["problems"][0]["field"] == "engine"
