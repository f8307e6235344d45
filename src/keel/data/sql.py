"""SQL sources: a query's result read into Arrow, and the digest a snapshot's id takes of it.

    table = run_query(SqlSource(url="sqlite:///flights.db", query="SELECT * FROM flights"))
    digest = ipc_digest(table)     # the same rows, fetched the same way: the same digest

The rows are fetched in batches of `SQL_BATCH_ROWS` (bounded memory), and the digest is taken
of the Arrow IPC stream as it is written, never held whole (`keel.data.snapshot` records it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

from keel.artifacts.hashing import new_hasher
from keel.domain.digest import Digest
from keel.errors import ConfigError, DataError
from keel.spec import SqlSource

__all__ = ["SQL_BATCH_ROWS", "ipc_digest", "run_query", "sqlite_absolute"]

#: Rows fetched from a SQL cursor at a time: bounded memory per step, and a fixed batch
#: size keeps the IPC stream (and so the id) the same for the same result.
SQL_BATCH_ROWS: Final = 65_536


def sqlite_absolute(source: SqlSource, base: Path) -> SqlSource:
    """A SQLite file named relative to `base` (the project, for keel.yaml), made absolute."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(source.url)
    except ArgumentError:
        return source  # run_query names the problem
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return source
    path = Path(database).expanduser()
    if not path.is_absolute():
        path = base / path
    if not path.exists():
        # SQLite would create an empty database and report a missing table instead.
        raise DataError(f"data.source.url: {path}: no such SQLite database file", path=path)
    absolute = url.set(database=str(path)).render_as_string(hide_password=False)
    return source.model_copy(update={"url": absolute})


def run_query(source: SqlSource) -> pa.Table:
    """The query's result as an Arrow table, fetched in batches of `SQL_BATCH_ROWS`."""
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc

    try:
        engine = sa.create_engine(source.url)
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError) as exc:
        raise ConfigError(
            f"data.source.url: cannot use this database URL: {_first_line(exc)}",
            problems=[("data.source.url", "must be a SQLAlchemy URL such as sqlite:///data.db")],
        ) from None
    batches: list[pa.RecordBatch] = []
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(sa.text(source.query))
            names = list(result.keys())
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise DataError(
                    f"data.source.query: the result has column '{duplicates[0]}' more than once",
                    hint="give each column a distinct name (SELECT ... AS name)",
                )
            while rows := result.fetchmany(SQL_BATCH_ROWS):
                batches.append(_batch(names, rows))
    except sa_exc.DBAPIError as exc:
        raise DataError(f"data.source.query failed: {_first_line(exc.orig or exc)}") from None
    finally:
        engine.dispose()
    if not batches:
        raise DataError(
            "data.source.query returned no rows",
            hint="check the query's filters; keel does not snapshot an empty result",
        )
    try:
        schema = pa.unify_schemas([b.schema for b in batches], promote_options="permissive")
        return pa.Table.from_batches([b.cast(schema) for b in batches], schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"data.source.query: column types disagree: {_first_line(exc)}") from None


def _batch(names: list[str], rows: Sequence[Any]) -> pa.RecordBatch:
    arrays = []
    for position, name in enumerate(names):
        values = [row[position] for row in rows]
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataError(
                f"data.source.query: column '{name}' mixes types: {_first_line(exc)}",
                hint="cast the column to one type in the query",
            ) from None
    return pa.RecordBatch.from_arrays(arrays, names=names)


class _HashSink:
    """A write-only file that hashes what it is given, so the IPC stream is never held whole."""

    closed = False

    def __init__(self) -> None:
        self.hasher = new_hasher()

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


def ipc_digest(table: pa.Table) -> Digest:
    sink = _HashSink()
    with pa.PythonFile(sink, mode="w") as stream, pa.ipc.new_stream(stream, table.schema) as out:
        out.write_table(table)
    return Digest.of_hex(sink.hasher.hexdigest())


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
