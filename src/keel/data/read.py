"""Read CSV and Parquet data into one Arrow table, or fail with a one-line error naming the file.

A source is a file, a glob pattern or a folder (every CSV or Parquet file below it, recursively,
skipping hidden and `_`-prefixed entries such as `_SUCCESS`). CSV files may be gzip-, bzip2- or
zstd-compressed; compression and format are detected from the name and the first bytes.

CSV reading is pyarrow's multithreaded reader with its type inference: integers, floats, booleans,
ISO-8601 dates and timestamps (`2013-01-01 05:00:00`, `2013-01-01T05:00:00Z`, `...+02:00`; a
timestamp with an offset becomes UTC) are typed, a column mixing numbers and words is read as
strings so that a contract check can report the mismatch with sample values. As in pandas, empty
fields and the usual markers (`NA`, `null`, `NaN`, ...) are nulls, in string columns too.

Every file's columns follow `keel.contracts.columns`: a row index pandas wrote (an unnamed first
column of distinct whole numbers) is left out and reported by `read_data`; any other column with
an empty or blank header, or a repeated name, is an error naming the file and the column.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.csv as pcsv  # type: ignore[import-untyped,unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

from keel.contracts.columns import split_index_columns
from keel.domain.dataset import LeftOutColumn
from keel.errors import DataError

__all__ = ["Format", "ReadResult", "combine_tables", "read_data", "read_table", "resolve_source"]

Format = Literal["auto", "csv", "parquet"]

_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst")
_COMPRESSION_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bz2",
    b"\x28\xb5\x2f\xfd": "zstd",
}
_COMPRESSION_NAMES = {"gzip": "gzip", "bz2": "bzip2", "zstd": "zstd"}
#: Many small files read faster side by side; each CSV read is itself multithreaded.
_MAX_PARALLEL_FILES = 4
#: Encoding scans stream the file rather than loading it: errors can sit in large files.
_SCAN_CHUNK = 1 << 20


def resolve_source(source: str | os.PathLike[str]) -> list[Path]:
    """The data files a source names, sorted: the file itself, a glob's matches or a folder's files.

    Raises DataError when nothing matches, so callers (snapshots, checks) never see an empty list.
    """
    text = os.fspath(source)
    path = Path(text).expanduser()
    try:
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*") if _is_data_file(p) and not _is_hidden(p, path)
            )
            if not files:
                raise DataError(
                    f"{path}: the folder holds no CSV or Parquet files "
                    f"(looked for {', '.join(_CSV_SUFFIXES + _PARQUET_SUFFIXES)})",
                    path=path,
                )
            return files
        if path.exists():
            return [path]
    except PermissionError as exc:
        raise DataError(f"{exc.filename or path}: permission denied", path=path) from None
    if any(char in text for char in "*?["):
        # glob.glob, not Path.glob: the pattern may be absolute ("/data/2024-*/part-*.parquet").
        found = glob.glob(text, recursive=True)  # noqa: PTH207
        matches = sorted(Path(m) for m in found if Path(m).is_file())
        if not matches:
            raise DataError(f"{text}: no files match this pattern", path=text)
        return matches
    raise DataError(f"{path}: no such file or folder", path=path)


@dataclass(frozen=True, slots=True)
class ReadResult:
    """The data read, and the columns of the files that were left out of it (row indexes)."""

    table: pa.Table
    left_out: tuple[LeftOutColumn, ...] = ()

    def notices(self) -> list[str]:
        return [f"left out {column.describe()}" for column in self.left_out]


def read_table(source: str | os.PathLike[str], *, format: Format = "auto") -> pa.Table:
    """Read a CSV or Parquet file, glob or folder into one table (see `read_data`)."""
    return read_data(source, format=format).table


def read_data(source: str | os.PathLike[str], *, format: Format = "auto") -> ReadResult:
    """Read a CSV or Parquet file, glob or folder into one table, without row-index columns.

    Several files are concatenated in sorted path order; they must have the same columns, and a
    column's types must agree up to safe widening (integer to float, all-null to anything).
    Any problem raises DataError naming the file and the rule; nothing is left half-read.
    """
    if format not in ("auto", "csv", "parquet"):
        raise ValueError(f"format must be 'auto', 'csv' or 'parquet', got {format!r}")
    files = resolve_source(source)
    if len(files) == 1:
        table, left_out = _read_file(files[0], format)
        return ReadResult(table, left_out)
    with ThreadPoolExecutor(max_workers=min(_MAX_PARALLEL_FILES, len(files))) as pool:
        # map() yields in file order, so the first bad file in sorted order is the one reported.
        read = list(pool.map(lambda p: _read_file(p, format), files))
    tables = [table for table, _ in read]
    # Files written alike leave out the same columns; each is reported once.
    left_out = tuple(dict.fromkeys(column for _, columns in read for column in columns))
    return ReadResult(_concat(list(zip(files, tables, strict=True))), left_out)


def _is_data_file(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and name.endswith(_CSV_SUFFIXES + _PARQUET_SUFFIXES)


def _is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith((".", "_")) for part in path.relative_to(root).parts)


def _read_file(path: Path, format: Format) -> tuple[pa.Table, tuple[LeftOutColumn, ...]]:
    head = _head(path)
    if format == "auto":
        format = _detect_format(path, head)
    table = _read_parquet(path) if format == "parquet" else _read_csv(path, head)
    table, left_out = split_index_columns(table, str(path))
    _check_unique_names(path, table.column_names)
    return table, left_out


def _head(path: Path) -> bytes:
    """The first bytes, read with Python so permission and zero-size problems get plain words."""
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except PermissionError:
        raise DataError(
            f"{path}: permission denied: keel cannot read this file",
            path=path,
            hint="give the user running keel read access (chmod u+r)",
        ) from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected a file", path=path) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot open: {exc.strerror or exc}", path=path) from None
    if not head:
        raise DataError(f"{path}: the file is empty (0 bytes)", path=path)
    return head


def _detect_format(path: Path, head: bytes) -> Format:
    name = path.name.lower()
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    return "parquet" if head.startswith(b"PAR1") else "csv"


def _compression(head: bytes) -> str | None:
    for magic, codec in _COMPRESSION_MAGIC.items():
        if head.startswith(magic):
            return codec
    return None


_CONVERT = pcsv.ConvertOptions(strings_can_be_null=True)


def _read_csv(path: Path, head: bytes) -> pa.Table:
    compression = _compression(head)

    def stream() -> Any:
        return pa.input_stream(str(path), compression=compression)

    _check_compression(path, compression)
    try:
        with stream() as source:
            table = pcsv.read_csv(source, convert_options=_CONVERT)
        names: list[str] = table.column_names
    except UnicodeDecodeError:
        # pyarrow decodes the header itself, so a bad byte there surfaces as a Python error.
        raise _encoding_error(path, stream, column=None) from None
    except pa.ArrowInvalid as exc:
        message = str(exc)
        if "Empty CSV file" in message:
            after = " after decompression" if compression else ""
            raise DataError(
                f"{path}: the file is empty{after}: no complete header line, no data rows",
                path=path,
            ) from None
        if "Expected" in message and "columns" in message:
            raise _ragged_error(path, stream, message) from None
        raise DataError(f"{path}: not readable as CSV: {_first_line(message)}", path=path) from None
    except OSError as exc:
        reason = _first_line(str(exc))
        if compression is None:
            raise DataError(f"{path}: cannot read: {reason}", path=path) from None
        # pyarrow's decompressors report truncated or corrupt streams as I/O errors.
        codec = _COMPRESSION_NAMES[compression]
        raise DataError(f"{path}: corrupt {codec} data: {reason}", path=path) from None
    for name, column_type in zip(names, table.schema.types, strict=True):
        # Arrow keeps bytes that are not UTF-8 as a binary column instead of failing the read.
        if pa.types.is_binary(column_type) or pa.types.is_large_binary(column_type):
            raise _encoding_error(path, stream, column=name)
    if table.num_rows == 0:
        raise DataError(
            f"{path}: the file has a header but no data rows (columns: {', '.join(names)})",
            path=path,
        )
    return table


def _check_compression(path: Path, compression: str | None) -> None:
    """A `.gz` name on bytes that are not gzip is a corrupt file, not plain text to parse."""
    name = path.name.lower()
    for suffix, codec in ((".gz", "gzip"), (".bz2", "bz2"), (".zst", "zstd")):
        if name.endswith(suffix) and compression != codec:
            raise DataError(
                f"{path}: corrupt {_COMPRESSION_NAMES[codec]} data: the name ends in {suffix} "
                "but the content does not start like a compressed stream",
                path=path,
            )


def _read_parquet(path: Path) -> pa.Table:
    try:
        table = pq.read_table(str(path))
    except (pa.ArrowException, OSError) as exc:
        # pyarrow prefixes "Could not open Parquet input source '<path>': "; the path is ours.
        reason = _first_line(str(exc)).split("': ", 1)[-1]
        raise DataError(f"{path}: not a valid Parquet file: {reason}", path=path) from None
    if table.num_rows == 0:
        raise DataError(
            f"{path}: the Parquet file has a schema but no rows "
            f"(columns: {', '.join(table.column_names)})",
            path=path,
        )
    return table


def _ragged_error(path: Path, stream: Callable[[], Any], message: str) -> DataError:
    """Re-read on one thread: only then does pyarrow know the physical row number."""
    bad_rows: list[Any] = []

    def keep_first(row: Any) -> str:
        bad_rows.append(row)
        return "error"

    parse = pcsv.ParseOptions(invalid_row_handler=keep_first)
    try:
        with stream() as source:
            pcsv.read_csv(
                source, read_options=pcsv.ReadOptions(use_threads=False), parse_options=parse
            )
    except pa.ArrowInvalid:
        pass
    if not bad_rows:
        return DataError(f"{path}: ragged CSV: {_first_line(message)}", path=path)
    row = bad_rows[0]
    where = f"row {row.number} (the header is row 1)" if row.number is not None else "a row"
    return DataError(
        f"{path}: ragged CSV: {where} has {row.actual_columns} columns, "
        f"expected {row.expected_columns} like the header",
        path=path,
        hint="fix the row (a stray or missing delimiter, or an unquoted comma in a value)",
    )


def _encoding_error(path: Path, stream: Callable[[], Any], *, column: str | None) -> DataError:
    where = _find_bad_utf8(stream)
    in_column = f" in column '{column}'" if column else " in the header"
    if where is None:
        detail = f"bytes that are not UTF-8{in_column}"
    else:
        line, offset, byte = where
        detail = f"byte 0x{byte:02x} at line {line} (byte offset {offset}) is not valid UTF-8"
    return DataError(
        f"{path}: wrong encoding: {detail}",
        path=path,
        hint="re-encode the file as UTF-8, e.g. iconv -f latin1 -t utf-8",
    )


def _find_bad_utf8(stream: Callable[[], Any]) -> tuple[int, int, int] | None:
    """(line, byte offset, byte) of the first byte that is not UTF-8, streaming the file."""
    line, offset, carry = 1, 0, b""
    with stream() as source:
        for chunk in _chunks(source):
            data = carry + chunk
            try:
                data.decode("utf-8")
                good = len(data)
            except UnicodeDecodeError as exc:
                split_char = exc.reason == "unexpected end of data" and chunk != b""
                if not split_char:
                    return (
                        line + data.count(b"\n", 0, exc.start),
                        offset + exc.start,
                        data[exc.start],
                    )
                # A multi-byte character cut by the chunk boundary: finish it with the next chunk.
                good = exc.start
            line += data.count(b"\n", 0, good)
            offset += good
            carry = data[good:]
    return None


def _chunks(source: Any) -> Iterator[bytes]:
    while True:
        chunk: bytes = source.read(_SCAN_CHUNK)
        yield chunk
        if not chunk:
            return


def _check_unique_names(path: Path, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(f"{path}: column '{name}' appears more than once", path=path)
        seen.add(name)


def combine_tables(tables: Sequence[tuple[str | Path, pa.Table]]) -> pa.Table:
    """Concatenate the tables of several files (named for errors) as `read_data` does: the
    same columns, types widened only where no value changes; DataError naming the file."""
    return _concat(tables)


def _concat(tables: Sequence[tuple[str | Path, pa.Table]]) -> pa.Table:
    """Concatenate files whose schemas agree, widening types only where no value changes."""
    first_path, first = tables[0]
    names: list[str] = first.column_names
    types = dict(zip(names, first.schema.types, strict=True))
    decided_by = dict.fromkeys(names, first_path)
    for path, table in tables[1:]:
        if set(table.column_names) != set(names):
            missing = [n for n in names if n not in table.column_names]
            extra = [n for n in table.column_names if n not in types]
            parts = [f"lacks column '{n}'" for n in missing] + [f"adds column '{n}'" for n in extra]
            raise DataError(
                f"{path}: columns differ from {first_path}: {'; '.join(parts)}", path=path
            )
        for name, column_type in zip(table.column_names, table.schema.types, strict=True):
            merged = _merge_types(types[name], column_type)
            if merged is None:
                raise DataError(
                    f"{path}: column '{name}' is {column_type} here "
                    f"but {types[name]} in {decided_by[name]}",
                    path=path,
                )
            if merged != types[name]:
                types[name], decided_by[name] = merged, path
    schema = pa.schema([(name, types[name]) for name in names])
    try:
        return pa.concat_tables([table.select(names).cast(schema) for _, table in tables])
    except pa.ArrowInvalid as exc:
        raise DataError(
            f"{first_path} and {len(tables) - 1} more: cannot combine: {_first_line(str(exc))}",
            path=first_path,
        ) from None


def _merge_types(a: Any, b: Any) -> Any:
    """The type both columns fit without losing values, or None when they disagree."""
    if pa.types.is_dictionary(a):
        a = a.value_type
    if pa.types.is_dictionary(b):
        b = b.value_type
    if a == b:
        return a
    if pa.types.is_null(a):
        return b
    if pa.types.is_null(b):
        return a
    kinds = {_kind(a), _kind(b)}
    if kinds == {"integer"}:
        return pa.int64()
    if kinds <= {"integer", "float"}:
        return pa.float64()
    if kinds == {"string"}:
        return pa.large_string()
    if kinds == {"timestamp"} and a.tz == b.tz:
        return a if _UNIT_RANK[a.unit] >= _UNIT_RANK[b.unit] else b
    return None


_UNIT_RANK = {"s": 0, "ms": 1, "us": 2, "ns": 3}


def _kind(data_type: Any) -> str:
    if pa.types.is_integer(data_type):
        return "integer"
    if pa.types.is_floating(data_type):
        return "float"
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return "string"
    if pa.types.is_timestamp(data_type):
        return "timestamp"
    return str(data_type)


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "unknown error"
