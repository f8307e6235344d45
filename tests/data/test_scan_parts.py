"""A manifest's files scanned in parts (as Spark's tasks scan them), the parts crossing
processes as JSON and merged, give what one pass over every file gives: the same schema,
profile, time range and the same first error, naming the same file."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from keel.data.lake import location
from keel.data.manifest import build_manifest, file_names, scan_files
from keel.data.scan import ScanPart
from keel.domain.dataset import Manifest
from keel.errors import DataError
from tests.data.test_snapshot_manifest import write_part


def _manifest(folder: Path, tmp_path: Path) -> tuple[Manifest, list[str]]:
    manifest, where = build_manifest(str(folder), stat_db=tmp_path / "stat.db")
    where.close()
    return manifest, file_names(where, manifest)


def _in_parts(manifest: Manifest, cuts: list[int], timestamp: str | None) -> ScanPart:
    """The files cut into parts at `cuts`, each scanned apart and sent as JSON, merged."""
    reader = location(manifest.location)  # no stat cache: as an executor reads
    bounds = [0, *cuts, len(manifest.files)]
    parts = [
        ScanPart.from_json(scan_files(reader, manifest, timestamp, range(a, b)).to_json())
        for a, b in itertools.pairwise(bounds)
    ]
    merged = parts[0]
    for part in parts[1:]:
        merged.merge(part)
    return merged


def test_parts_merged_equal_one_pass(tmp_path: Path, flights_table: pa.Table) -> None:
    columns = ["month", "carrier", "tailnum", "dep_delay", "air_time", "time_hour"]
    table = flights_table.select(columns).slice(0, 60_000)
    lake = tmp_path / "lake"
    for month in range(1, 4):
        rows = table.filter(pc.equal(table["month"], month))
        for half, piece in enumerate((rows.slice(0, 5_000), rows.slice(5_000))):
            if month == 2 and half == 1:
                # Types that widen across files: int64 then double, as Parquet writers do.
                piece = piece.set_column(3, "dep_delay", piece["dep_delay"].cast(pa.float64()))
            write_part(lake / f"m{month}-{half}.parquet", piece)
    manifest, names = _manifest(lake, tmp_path)
    whole = scan_files(location(manifest.location), manifest, "time_hour", range(6)).result(names)
    parted = _in_parts(manifest, [1, 4], "time_hour").result(names)

    assert parted.columns == whole.columns
    assert dict(parted.columns)["dep_delay"] == "double"
    assert parted.time_range == whole.time_range
    assert parted.time_range is not None
    assert parted.time_range.start == datetime(2013, 1, 1, 10, tzinfo=UTC)
    assert parted.left_out == whole.left_out
    ours, theirs = parted.profile, whole.profile
    assert ours.rows == theirs.rows == table.filter(pc.less_equal(table["month"], 3)).num_rows
    for column in theirs.columns:
        mine = ours.column(column.name)
        assert (mine.type, mine.kind, mine.count, mine.nulls) == (
            column.type,
            column.kind,
            column.count,
            column.nulls,
        )
        assert mine.categorical == column.categorical
        assert mine.temporal == column.temporal
        if column.numeric is not None:
            assert mine.numeric is not None
            assert (mine.numeric.min, mine.numeric.max) == (column.numeric.min, column.numeric.max)
            assert mine.numeric.mean == pytest.approx(column.numeric.mean, rel=1e-12)
            assert mine.numeric.std == pytest.approx(column.numeric.std, rel=1e-12)
            assert mine.numeric.quantiles == column.numeric.quantiles
            assert mine.numeric.histogram == column.numeric.histogram


def test_the_first_problem_in_file_order_is_raised_whatever_the_parts(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    write_part(lake / "a.parquet", pa.table({"x": pa.array([1, 2], pa.int64())}))
    write_part(lake / "b.parquet", pa.table({"x": pa.array([2.5, None])}))
    write_part(lake / "c.parquet", pa.table({"x": ["three"]}))
    (lake / "d.parquet").write_bytes(b"PAR1 but not Parquet")
    manifest, names = _manifest(lake, tmp_path)
    with pytest.raises(DataError) as one_pass:
        scan_files(location(manifest.location), manifest, None, range(4)).result(names)
    assert "c.parquet: column 'x' is string here but double" in str(one_pass.value)
    # Each file alone in its part: no part sees the disagreement, the merge does; the
    # unreadable file after it is not what is reported.
    for cuts in ([1, 2, 3], [2], [3]):
        with pytest.raises(DataError) as parted:
            _in_parts(manifest, cuts, None).result(names)
        assert str(parted.value) == str(one_pass.value), cuts

    (lake / "c.parquet").unlink()
    manifest, names = _manifest(lake, tmp_path)
    with pytest.raises(DataError, match=r"d\.parquet: not a valid Parquet file") as unreadable:
        _in_parts(manifest, [1], None).result(names)
    assert unreadable.value.path == str(lake / "d.parquet")
