"""`keel drift` on January and December flights, as a user runs it: no project, real files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from scipy import stats

from tests.fixtures.cli import Keel

FLIGHTS = (
    Path(__file__).parents[2] / "examples" / "flights" / "data" / "nycflights13_flights.csv.gz"
)


@pytest.fixture(scope="module")
def months(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """January as one Parquet file; December as a folder of two Parquet parts."""
    if not FLIGHTS.exists():
        pytest.fail(f"{FLIGHTS} is missing: the example data ships in the repository")
    folder = tmp_path_factory.mktemp("flights")
    table = pcsv.read_csv(FLIGHTS)
    january = table.filter(pc.equal(table["month"], 1))
    december = table.filter(pc.equal(table["month"], 12))
    pq.write_table(january, folder / "jan.parquet")
    (folder / "dec").mkdir()
    half = december.num_rows // 2
    pq.write_table(december.slice(0, half), folder / "dec" / "part-0.parquet")
    pq.write_table(december.slice(half), folder / "dec" / "part-1.parquet")
    return folder / "jan.parquet", folder / "dec"


def _values(path: Path, column: str) -> np.ndarray:
    table = (
        pq.read_table(path)
        if path.is_file()
        else pa.concat_tables(pq.read_table(p) for p in sorted(path.glob("*.parquet")))
    )
    return table[column].drop_null().to_numpy().astype(float)


def test_ks_statistics_equal_scipy_and_drift_exits_1(keel: Keel, months: tuple[Path, Path]) -> None:
    jan, dec = months
    result = keel("drift", jan, dec, "--test", "ks", "--columns", "dep_delay,distance", "--json")

    assert result.code == 1, result.err
    document = result.json()
    assert document["ok"] is False
    assert document["tested"] == 2 and document["skipped"] == []
    assert document["reference"]["rows"] == 27_004 and document["current"]["rows"] == 28_135
    by_column = {c["column"]: c for c in document["columns"]}
    assert list(by_column) == ["dep_delay", "distance"]
    for column in ("dep_delay", "distance"):
        entry = by_column[column]
        assert {"column", "test", "statistic", "p_value", "threshold", "drifted"} <= entry.keys()
        assert entry["test"] == "ks" and entry["threshold"] == 0.05
        expected = stats.ks_2samp(_values(jan, column), _values(dec, column))
        assert entry["statistic"] == pytest.approx(expected.statistic, abs=1e-12)
        assert entry["p_value"] == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-300)
        assert entry["drifted"] is bool(expected.pvalue < 0.05)
        assert entry["reference_count"] == _values(jan, column).size
    assert document["drifted"] == sum(c["drifted"] for c in document["columns"]) >= 1
    assert document["drifted_columns"] == [c for c, e in by_column.items() if e["drifted"]]


def test_the_same_data_does_not_drift(keel: Keel, months: tuple[Path, Path]) -> None:
    jan, _ = months
    result = keel("drift", jan, jan, "--json")
    assert result.code == 0, result.out
    document = result.json()
    assert document["ok"] is True and document["drifted"] == 0
    assert document["tested"] == 18  # every column but time_hour
    assert document["skipped"] == [
        {"column": "time_hour", "reason": "timestamps and dates are not tested for drift"}
    ]


def test_text_table_and_self_contained_report(
    keel: Keel, months: tuple[Path, Path], tmp_path: Path
) -> None:
    jan, dec = months
    report = tmp_path / "out" / "drift.html"
    result = keel(
        "drift", jan, dec, "--columns", "dep_delay,carrier,origin,hour", "--report", report
    )
    assert result.code == 1
    lines = result.out.splitlines()
    header = next(line for line in lines if line.startswith("COLUMN"))
    assert header.split() == [
        "COLUMN", "TEST", "STATISTIC", "SCORE", "P-VALUE", "DRIFTED", "WHEN", "DRIFTED",
    ]  # fmt: skip
    assert any(re.match(r"carrier\s+jensenshannon\s", line) for line in lines)
    assert re.search(r"^\d of 4 columns drifted: ", result.out, re.M)
    assert f"report: {report}" in result.out

    html = report.read_text()
    assert "<svg" in html and "<script" not in html
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", html)
    assert not re.search(r"<link[^>]+stylesheet", html)
    assert html.count("<section class='card") == 4


def test_forced_test_keeps_the_default_where_it_does_not_apply(
    keel: Keel, months: tuple[Path, Path]
) -> None:
    jan, dec = months
    result = keel("drift", jan, dec, "--test", "chi2", "--threshold", "0.01", "--json")
    tests = {c["column"]: (c["test"], c["threshold"]) for c in result.json()["columns"]}
    assert tests["carrier"] == ("chi2", 0.01)
    assert tests["distance"] == ("wasserstein", 0.1)  # numbers keep their default


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--test", "anova"], ["--test", "anova", "ks"]),
        (["--threshold", "0.2"], ["--threshold", "needs --test"]),
        (["--test", "ks", "--threshold", "5"], ["--threshold", "between 0 and 1"]),
        (["--test", "wasserstein", "--threshold", "-1"], ["--threshold", "positive"]),
        (
            ["--test", "chi2", "--columns", "carrier,distance"],
            ["--test", "chi2 does not apply to distance (numeric)"],
        ),
        (["--columns", "carrier,gate"], ["--columns", "no column 'gate'"]),
        (["--columns", " , "], ["--columns", "column names"]),
    ],
)
def test_bad_options_exit_2_naming_the_option(
    keel: Keel, months: tuple[Path, Path], args: list[str], fragments: list[str]
) -> None:
    jan, dec = months
    result = keel("drift", jan, dec, *args)
    assert result.code == 2, result.out
    for fragment in fragments:
        assert fragment in result.err
    assert "Traceback" not in result.err


def test_bad_data_exits_2_naming_the_file(
    keel: Keel, months: tuple[Path, Path], tmp_path: Path
) -> None:
    jan, _ = months
    missing = keel("drift", jan, tmp_path / "nope.parquet", "--json")
    assert missing.code == 2
    error = missing.json()["error"]
    assert error["code"] == "data_error" and "nope.parquet" in error["message"]

    other = tmp_path / "weather.csv"
    other.write_text("station,temp\nJFK,3.5\nLGA,4.0\n")
    disjoint = keel("drift", jan, other)
    assert disjoint.code == 2
    assert "share no column" in disjoint.err and "station, temp" in disjoint.err

    retyped = tmp_path / "retyped.csv"
    retyped.write_text("carrier,distance\nUA,far\nAA,near\n")
    clash = keel("drift", jan, retyped, "--json")
    assert clash.code == 2
    assert "distance" in clash.json()["error"]["message"]


def test_help_says_exit_1_on_drift(keel: Keel) -> None:
    result = keel("drift", "--help")
    assert result.code == 0
    assert "exits 1 when any column drifted" in " ".join(result.out.split())
