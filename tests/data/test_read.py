"""Reading CSV and Parquet: types on the real flights file, one-line errors for bad input."""

from __future__ import annotations

import gzip
import os
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from keel.data import DataError, read_table, resolve_source
from keel.errors import KeelError
from tests.contracts.support import flights, flights_path


def _error(source: Path | str) -> DataError:
    with pytest.raises(DataError) as caught:
        read_table(source)
    message = str(caught.value)
    assert "\n" not in message, "errors are one line"
    return caught.value


# -- the real file ---------------------------------------------------------------------------


def test_flights_types_are_inferred_and_timestamps_parsed() -> None:
    table = flights()
    assert table.num_rows == 336_776
    assert table.num_columns == 19
    assert table.schema.field("time_hour").type == pa.timestamp("s", tz="UTC")
    assert table.schema.field("distance").type == pa.int64()
    assert table.schema.field("carrier").type == pa.string()
    # "NA" marks a missing tail number, as pandas reads it.
    assert table["tailnum"].null_count == 2512
    assert table["arr_delay"].null_count == 9430


def test_iso_timestamps_with_offsets_become_utc_and_naive_ones_stay_naive(tmp_path: Path) -> None:
    aware = tmp_path / "aware.csv"
    aware.write_text("t,v\n2013-01-01 05:00:00+00:00,1\n2013-01-01T06:00:00+02:00,2\n")
    naive = tmp_path / "naive.csv"
    naive.write_text("t,v\n2013-01-01 05:00:00,1\n2013-01-01T06:00:00,2\n")
    times = read_table(aware)["t"].to_pylist()
    assert times == [datetime(2013, 1, 1, 5, tzinfo=UTC), datetime(2013, 1, 1, 4, tzinfo=UTC)]
    assert read_table(naive).schema.field("t").type == pa.timestamp("s")


def test_a_column_of_numbers_and_words_is_read_as_strings(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text("a,b\n1,2\nx,3\n")
    assert read_table(path).schema.field("a").type == pa.string()


def test_a_folder_concatenates_csv_and_parquet_and_widens_integers(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,score\n1,2\n2,3\n")
    pq.write_table(pa.table({"score": [0.5], "id": [3]}), tmp_path / "b.parquet")
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / ".hidden.csv").write_text("nothing,here\n")
    (tmp_path / "notes.md").write_text("not data")
    table = read_table(tmp_path)
    assert table.column_names == ["id", "score"]
    assert table.schema.field("score").type == pa.float64()
    assert table.to_pydict() == {"id": [1, 2, 3], "score": [2.0, 3.0, 0.5]}


def test_a_glob_reads_matching_files_in_sorted_order(tmp_path: Path) -> None:
    for month in (2, 1):
        with gzip.open(tmp_path / f"part-{month}.csv.gz", "wt") as handle:
            handle.write(f"month\n{month}\n")
    assert read_table(tmp_path / "part-*.csv.gz")["month"].to_pylist() == [1, 2]
    assert [p.name for p in resolve_source(tmp_path / "part-*.csv.gz")] == [
        "part-1.csv.gz",
        "part-2.csv.gz",
    ]


def test_format_is_detected_from_content_when_the_name_says_nothing(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1]}), tmp_path / "data.bin")
    assert read_table(tmp_path / "data.bin").to_pydict() == {"a": [1]}
    (tmp_path / "data.txt").write_text("a\n1\n")
    assert read_table(tmp_path / "data.txt", format="csv").to_pydict() == {"a": [1]}


def test_data_error_is_a_keel_error() -> None:
    assert issubclass(DataError, KeelError)


# -- bad input: one line, naming the file and the rule -----------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    error = _error(path)
    assert str(error) == f"{path}: no such file or folder"
    assert error.path == str(path)


def test_glob_matching_nothing(tmp_path: Path) -> None:
    pattern = str(tmp_path / "*.parquet")
    assert str(_error(pattern)) == f"{pattern}: no files match this pattern"


def test_folder_without_data_files(tmp_path: Path) -> None:
    (tmp_path / "readme.md").write_text("hello")
    assert "holds no CSV or Parquet files" in str(_error(tmp_path))


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.csv"
    path.write_text("a\n1\n")
    path.chmod(0)
    if os.geteuid() == 0:
        # root reads any file: make the open fail the way it does for everyone else.
        real_open = Path.open

        def denied(self: Path, *args: object, **kwargs: object) -> object:
            if self == path:
                raise PermissionError(13, "Permission denied", str(self))
            return real_open(self, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(Path, "open", denied)
    try:
        error = _error(path)
    finally:
        path.chmod(0o600)
    assert str(error).startswith(f"{path}: permission denied")
    assert error.hint


def test_wrong_encoding_names_the_line_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("city,n\nParis,1\nMünchen,2\n".encode("latin-1"))
    message = str(_error(path))
    assert message.startswith(f"{path}: wrong encoding: byte 0xfc at line 3")
    assert "not valid UTF-8" in message


def test_wrong_encoding_in_the_header(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_bytes("größe,n\n1,2\n".encode("latin-1"))
    assert "byte 0xf6 at line 1" in str(_error(path))


def test_wrong_encoding_deep_in_a_compressed_file(tmp_path: Path) -> None:
    path = tmp_path / "big.csv.gz"
    rows = "".join(f"{i},plain\n" for i in range(200_000))
    with gzip.open(path, "wb") as handle:
        handle.write(b"n,word\n" + rows.encode() + "200000,café\n".encode("latin-1"))
    assert "at line 200002" in str(_error(path))


def test_ragged_rows_name_the_row_and_the_counts(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,c\n1,2,3\n4,5\n6,7,8\n")
    message = str(_error(path))
    assert message == (
        f"{path}: ragged CSV: row 3 (the header is row 1) has 2 columns, expected 3 like the header"
    )


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert str(_error(path)) == f"{path}: the file is empty (0 bytes)"


def test_header_only_file(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("a,b\n")
    assert str(_error(path)) == f"{path}: the file has a header but no data rows (columns: a, b)"


def test_gzip_of_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv.gz"
    path.write_bytes(gzip.compress(b""))
    assert "the file is empty after decompression" in str(_error(path))


def test_truncated_gzip(tmp_path: Path) -> None:
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(flights_path().read_bytes()[:100_000])
    assert str(_error(path)).startswith(f"{path}: corrupt gzip data")


def test_gzip_name_on_plain_bytes(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv.gz"
    path.write_text("a\n1\n")
    assert str(_error(path)).startswith(f"{path}: corrupt gzip data: the name ends in .gz")


def test_corrupt_parquet(tmp_path: Path) -> None:
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"a": list(range(1000))}), good)
    path = tmp_path / "bad.parquet"
    path.write_bytes(good.read_bytes()[:-20])
    assert str(_error(path)).startswith(f"{path}: not a valid Parquet file")


def test_parquet_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "none.parquet"
    pq.write_table(pa.table({"a": pa.array([], pa.int64())}), path)
    assert "has a schema but no rows" in str(_error(path))


def test_duplicate_column_names(tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    path.write_text("a,b,a\n1,2,3\n")
    assert str(_error(path)) == f"{path}: column 'a' appears more than once"


def test_files_whose_types_disagree_name_both_files_and_the_column(tmp_path: Path) -> None:
    (tmp_path / "1.csv").write_text("id,code\n1,10\n")
    (tmp_path / "2.csv").write_text("id,code\n2,x7\n")
    message = str(_error(tmp_path))
    assert message == (
        f"{tmp_path / '2.csv'}: column 'code' is string here but int64 in {tmp_path / '1.csv'}"
    )


def test_files_whose_columns_differ(tmp_path: Path) -> None:
    (tmp_path / "1.csv").write_text("id,code\n1,10\n")
    (tmp_path / "2.csv").write_text("id,kind\n2,7\n")
    message = str(_error(tmp_path))
    assert message.startswith(f"{tmp_path / '2.csv'}: columns differ from {tmp_path / '1.csv'}")
    assert "lacks column 'code'" in message
    assert "adds column 'kind'" in message


def test_the_first_bad_file_in_order_is_reported(tmp_path: Path) -> None:
    (tmp_path / "1.csv").write_text("a\n1\n")
    (tmp_path / "2.csv").write_bytes(b"")
    (tmp_path / "3.csv").write_text("a,b\n1\n")
    assert str(_error(tmp_path)).startswith(f"{tmp_path / '2.csv'}: the file is empty")
