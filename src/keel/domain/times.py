"""Time columns, one way everywhere: any temporal Arrow column, or ISO-8601 text, as UTC instants.

A time column can arrive as a date (date32, date64), a timestamp of any unit (s, ms, us, ns) with or
without a time zone, or as text (a request, a SQL source without a time type). Whatever compares,
orders or windows times (the split, monitoring by event time, freshness, the prediction log) turns
the column into `timestamp[us, UTC]` with `to_utc`, never with an ad-hoc cast. The rules:

- a date is its midnight in UTC, and for freshness it stands for the whole day (`covers_until`);
- a timestamp without a zone is taken as UTC; one with a zone is the same instant in UTC;
- nanoseconds are cut to microseconds (Python's datetime, and keel's logs, stop there).

Each column also has a *kind*, `date` or `timestamp`, which decides how it is shown and parsed
(`YYYY-MM-DD` against ISO 8601) and the pandas dtype feature code receives (`to_pandas`): a date
as naive `datetime64[us]` at midnight, a timestamp as `datetime64[us, UTC]`, in training and in
serving alike.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Literal

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

__all__ = [
    "EXPECTED_FORMAT",
    "TIME_KINDS",
    "UTC_TIMESTAMP",
    "NotATime",
    "TimeKind",
    "as_utc",
    "covers_until",
    "is_temporal",
    "kind_named",
    "parse",
    "render",
    "table_to_pandas",
    "time_kind",
    "to_pandas",
    "to_utc",
]

TimeKind = Literal["date", "timestamp"]

#: The one type keel compares and stores instants in.
UTC_TIMESTAMP: Final = pa.timestamp("us", tz="UTC")
#: The logical types (of contracts and inference contracts) that are times.
TIME_KINDS: Final = ("date", "timestamp")

#: How a value of each kind is written, for error messages.
EXPECTED_FORMAT: Final[dict[TimeKind, str]] = {
    "date": "a date as YYYY-MM-DD (e.g. 2012-01-31)",
    "timestamp": "an ISO 8601 timestamp (e.g. 2012-01-31T17:00:00Z; without a zone it is UTC)",
}


class NotATime(ValueError):
    """Values that are not times: text that does not parse (`position` and `text` say where and
    what), or a column of a type that holds no times (`position` is None)."""

    def __init__(self, message: str, *, position: int | None = None, text: str = "") -> None:
        super().__init__(message)
        self.position = position
        self.text = text


def _plain(data_type: Any) -> Any:
    return data_type.value_type if pa.types.is_dictionary(data_type) else data_type


def _is_text(data_type: Any) -> bool:
    return bool(
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_string_view(data_type)
    )


def time_kind(data_type: Any) -> TimeKind | None:
    """`date` for date32/date64, `timestamp` for any timestamp, None for anything else."""
    data_type = _plain(data_type)
    if pa.types.is_date(data_type):
        return "date"
    if pa.types.is_timestamp(data_type):
        return "timestamp"
    return None


def kind_named(type_name: str) -> TimeKind | None:
    """The kind of an Arrow type written as text (`date32[day]`, `timestamp[us, tz=UTC]`), as
    dataset versions record their columns."""
    if type_name.startswith("date"):
        return "date"
    if type_name.startswith("timestamp"):
        return "timestamp"
    return None


def is_temporal(data_type: Any) -> bool:
    return time_kind(data_type) is not None


def to_utc(values: Any) -> Any:
    """The column (Array or ChunkedArray) as `timestamp[us, UTC]`, nulls kept.

    Text is parsed as ISO 8601 (dates, timestamps with or without an offset, mixed). Raises
    NotATime for text that does not parse, naming the first such value, or for a column of
    another type.
    """
    data_type = values.type
    if pa.types.is_dictionary(data_type):
        values = values.cast(data_type.value_type)
        data_type = values.type
    if data_type == UTC_TIMESTAMP:
        return values
    if pa.types.is_timestamp(data_type):
        if data_type.unit == "ns":
            values = values.cast(pa.timestamp("us", data_type.tz), safe=False)
        # A zoned timestamp is stored as UTC underneath; a naive one is read as UTC.
        return values.cast(UTC_TIMESTAMP)
    if pa.types.is_date(data_type):
        # date32 has no direct cast to a zoned timestamp; midnight first, then UTC.
        return values.cast(pa.timestamp("us")).cast(UTC_TIMESTAMP)
    if pa.types.is_null(data_type):
        return values.cast(UTC_TIMESTAMP)
    if _is_text(data_type):
        return _parse_column(values)
    raise NotATime(f"holds {data_type}, not timestamps or dates")


def _parse_column(values: Any) -> Any:
    # Arrow parses uniform text fast: every value with an offset, or every value without.
    try:
        return values.cast(UTC_TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    try:
        return values.cast(pa.timestamp("us")).cast(UTC_TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    texts = values.to_pylist()
    moments = [
        None if text is None else _instant(text, position) for position, text in enumerate(texts)
    ]
    parsed = pa.array(moments, UTC_TIMESTAMP)
    if isinstance(values, pa.ChunkedArray):
        return pa.chunked_array([parsed], UTC_TIMESTAMP)
    return parsed


def _instant(text: Any, position: int) -> datetime:
    try:
        value = parse(text, "timestamp", position=position)
    except NotATime:
        raise NotATime(
            f"holds text that is not ISO-8601 timestamps or dates: {text!r} (row {position + 1}); "
            f"expected {EXPECTED_FORMAT['timestamp']}",
            position=position,
            text=text,
        ) from None
    assert isinstance(value, datetime)
    return value


def parse(text: Any, kind: TimeKind, *, position: int | None = None) -> datetime | date:
    """One value of a request or a text column: a `date` for the date kind (`YYYY-MM-DD`), an
    aware UTC `datetime` for the timestamp kind (ISO 8601; a date alone is its midnight).

    Raises NotATime saying what was expected.
    """
    if not isinstance(text, str):
        raise NotATime(
            f"expected {EXPECTED_FORMAT[kind]}, got {type(text).__name__}",
            position=position,
            text=repr(text),
        )
    stripped = text.strip()
    try:
        # date.fromisoformat also takes 20120601 and 2012-W22-5; a date input wants YYYY-MM-DD.
        if kind == "date" and len(stripped) == len("YYYY-MM-DD"):
            return date.fromisoformat(stripped)
        if kind == "timestamp":
            return as_utc(datetime.fromisoformat(stripped.replace("Z", "+00:00")))
    except ValueError:
        pass
    raise NotATime(f"expected {EXPECTED_FORMAT[kind]}, got {text!r}", position=position, text=text)


def as_utc(value: datetime | date) -> datetime:
    """One value as an aware UTC datetime: a naive timestamp is UTC, a date its midnight in UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.combine(value, time(), tzinfo=UTC)


def covers_until(value: datetime | date) -> datetime:
    """The end of what one value vouches for, in UTC: a date covers its whole day (until the
    next midnight), a timestamp only its instant. Freshness measures age from here."""
    if isinstance(value, datetime):
        return as_utc(value)
    return as_utc(value) + timedelta(days=1)


def render(value: datetime | date | None, kind: TimeKind | None = None) -> str:
    """A value as users read and send it: `2012-01-31` for a date, ISO 8601 in UTC otherwise."""
    if value is None:
        return ""
    if kind == "date" or (kind is None and not isinstance(value, datetime)):
        day = value.date() if isinstance(value, datetime) else value
        return day.isoformat()
    return as_utc(value).isoformat()


def to_pandas(values: Any, kind: TimeKind) -> Any:
    """A time column (Arrow, any temporal type or ISO text) as the pandas Series feature code
    receives: naive `datetime64[us]` at midnight for a date, `datetime64[us, UTC]` otherwise."""
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    instants = to_utc(values)
    # Through naive microseconds: pyarrow's conversion of zoned columns warns on pandas 3.1.
    naive = instants.cast(pa.timestamp("us"))
    if kind == "date":
        naive = pc.floor_temporal(naive, unit="day")
    series = pd.Series(naive.to_numpy(zero_copy_only=False), dtype="datetime64[us]")
    return series if kind == "date" else series.dt.tz_localize("UTC")


def table_to_pandas(table: Any) -> Any:
    """An Arrow table as a pandas DataFrame, its time columns as `to_pandas` gives them (the
    rest as Arrow converts them): the raw frame feature code receives in training."""
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    times = {name: time_kind(table.schema.field(name).type) for name in table.column_names}
    others = table.drop_columns([name for name, kind in times.items() if kind is not None])
    converted = others.to_pandas()
    columns = {}
    for name, kind in times.items():
        if kind is None:
            columns[name] = converted[name]
        else:
            columns[name] = to_pandas(table.column(name), kind).set_axis(converted.index)
    return pd.DataFrame(columns, index=converted.index)
