"""One normal form for every time column: each temporal Arrow type, and ISO-8601 text, reads
back as the same UTC instants, orders the same, splits the same, and reaches feature code in
one pandas dtype per kind."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.domain.times import (
    UTC_TIMESTAMP,
    NotATime,
    covers_until,
    parse,
    render,
    table_to_pandas,
    time_kind,
    to_pandas,
    to_utc,
)
from keel.pipeline.split import split_rows
from tests.fixtures.time_types import TIME_TYPES, TimeType

TYPES = list(TIME_TYPES.values())
IDS = list(TIME_TYPES)

instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


@pytest.mark.parametrize("kind", TYPES, ids=IDS)
@settings(max_examples=50, deadline=None)
@given(values=st.lists(instants, min_size=1, max_size=30))
def test_every_time_type_reads_back_as_the_same_utc_instants(
    kind: TimeType, values: list[datetime]
) -> None:
    column = kind.column(values)
    normal = to_utc(column)
    assert normal.type == UTC_TIMESTAMP
    assert normal.to_pylist() == [kind.expected(v) for v in values]
    # Chunked columns (every table column) take the same path.
    assert to_utc(pa.chunked_array([column])).to_pylist() == normal.to_pylist()


@pytest.mark.parametrize("kind", TYPES, ids=IDS)
def test_nulls_stay_null(kind: TimeType) -> None:
    column = kind.column([datetime(2012, 6, 1, 17, tzinfo=UTC)])
    with_null = pa.concat_arrays([column, pa.nulls(1, column.type)])
    assert to_utc(with_null).to_pylist()[1] is None


@pytest.mark.parametrize("kind", TYPES, ids=IDS)
@settings(max_examples=40, deadline=None)
@given(
    hours=st.lists(st.integers(min_value=0, max_value=24 * 60), min_size=2, max_size=120),
    window_days=st.integers(min_value=1, max_value=70),
)
def test_every_time_type_splits_like_utc_microseconds(
    kind: TimeType, hours: list[int], window_days: int
) -> None:
    start = datetime(2011, 3, 1, tzinfo=UTC)
    moments = [start + timedelta(hours=h) for h in hours]
    table = pa.table({"t": kind.column(moments), "x": list(range(len(hours)))})
    reference = pa.table({"t": pa.array([kind.expected(m) for m in moments], UTC_TIMESTAMP)})
    for window in (None, timedelta(days=window_days)):
        try:
            expected = split_rows(
                reference, method="time", holdout=0.2, timestamp="t", window=window
            )
        except Exception as exc:  # noqa: BLE001 - the same refusal is expected of every type
            with pytest.raises(type(exc)):
                split_rows(table, method="time", holdout=0.2, timestamp="t", window=window)
            continue
        split = split_rows(table, method="time", holdout=0.2, timestamp="t", window=window)
        assert split.train.tolist() == expected.train.tolist()
        assert split.holdout.tolist() == expected.holdout.tolist()
        assert split.excluded == expected.excluded
        assert split.boundary == expected.boundary


@pytest.mark.parametrize("kind", TYPES, ids=IDS)
def test_feature_code_gets_one_pandas_dtype_per_kind(kind: TimeType) -> None:
    moment = datetime(2012, 6, 1, 23, 30, tzinfo=UTC)
    column = kind.column([moment])
    arrow_kind = time_kind(column.type) or kind.kind  # text: the kind keel.yaml's column has
    series = to_pandas(column, arrow_kind)
    if arrow_kind == "date":
        assert str(series.dtype) == "datetime64[us]"
        assert series[0].to_pydatetime() == datetime(2012, 6, 1)
    else:
        assert str(series.dtype) == "datetime64[us, UTC]"
        assert series[0].to_pydatetime() == moment
    if not pa.types.is_string(column.type):
        frame = table_to_pandas(pa.table({"t": column, "x": [1]}))
        assert list(frame.columns) == ["t", "x"]
        assert frame["t"].dtype == series.dtype


def test_text_that_is_no_time_is_named_with_its_row() -> None:
    with pytest.raises(NotATime, match=r"'soon' \(row 2\)") as caught:
        to_utc(pa.array(["2012-06-01T10:00:00Z", "soon", "2012-06-01"]))
    assert caught.value.position == 1
    with pytest.raises(NotATime, match="holds int64, not timestamps or dates"):
        to_utc(pa.array([1, 2]))


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("2012-06-01", "date", date(2012, 6, 1)),
        ("2012-06-01", "timestamp", datetime(2012, 6, 1, tzinfo=UTC)),
        ("2012-06-01T10:00:00", "timestamp", datetime(2012, 6, 1, 10, tzinfo=UTC)),
        ("2012-06-01T10:00:00Z", "timestamp", datetime(2012, 6, 1, 10, tzinfo=UTC)),
        ("2012-06-01 12:00:00+02:00", "timestamp", datetime(2012, 6, 1, 10, tzinfo=UTC)),
    ],
)
def test_request_values_parse_by_kind(text: str, kind: str, value: object) -> None:
    assert parse(text, kind) == value  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("2012-06-01T10:00:00", "date"),
        ("01/06/2012", "date"),
        ("yesterday", "timestamp"),
        ("", "timestamp"),
        (20120601, "date"),
    ],
)
def test_bad_request_values_say_the_expected_format(text: object, kind: str) -> None:
    expected = "YYYY-MM-DD" if kind == "date" else "ISO 8601"
    with pytest.raises(NotATime, match=expected):
        parse(text, kind)  # type: ignore[arg-type]


def test_a_date_covers_its_whole_day_and_renders_as_a_date() -> None:
    assert covers_until(date(2012, 6, 1)) == datetime(2012, 6, 2, tzinfo=UTC)
    assert covers_until(datetime(2012, 6, 1, 5)) == datetime(2012, 6, 1, 5, tzinfo=UTC)
    assert render(date(2012, 6, 1)) == "2012-06-01"
    assert render(datetime(2012, 6, 1, tzinfo=UTC), "date") == "2012-06-01"
    assert render(datetime(2012, 6, 1, 5)) == "2012-06-01T05:00:00+00:00"


def test_text_mixing_offsets_dates_and_no_offset_is_read_value_by_value() -> None:
    text = ["2012-06-01T12:00:00+02:00", "2012-06-01", "2012-06-01T10:30:00", None]
    assert to_utc(pa.chunked_array([pa.array(text)])).to_pylist() == [
        datetime(2012, 6, 1, 10, tzinfo=UTC),
        datetime(2012, 6, 1, tzinfo=UTC),
        datetime(2012, 6, 1, 10, 30, tzinfo=UTC),
        None,
    ]
