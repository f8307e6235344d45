"""Holdout splits on the real flights data: time splits never leak the future into training."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.errors import ConfigError
from keel.pipeline.split import split_rows
from tests.contracts.support import first_half


def test_time_split_holds_out_the_newest_rows_without_sharing_an_instant() -> None:
    table = first_half()
    split = split_rows(table, method="time", holdout=0.2, timestamp="time_hour")
    times = table["time_hour"].to_numpy()
    assert times[split.train].max() < times[split.holdout].min()
    assert split.boundary is not None and split.boundary.month == 5
    assert abs(split.holdout.size / table.num_rows - 0.2) < 0.01
    assert split.train.size + split.holdout.size == table.num_rows
    assert not set(split.train.tolist()) & set(split.holdout.tolist())


def test_random_split_is_seeded() -> None:
    table = first_half()
    a = split_rows(table, method="random", holdout=0.25, seed=7)
    b = split_rows(table, method="random", holdout=0.25, seed=7)
    c = split_rows(table, method="random", holdout=0.25, seed=8)
    assert np.array_equal(a.holdout, b.holdout)
    assert not np.array_equal(a.holdout, c.holdout)
    assert a.holdout.size == round(table.num_rows * 0.25)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "time", "holdout": 0.2}, "data.timestamp is not set"),
        ({"method": "time", "holdout": 0.2, "timestamp": "nope"}, "'nope' is not in the data"),
        ({"method": "time", "holdout": 0.2, "timestamp": "carrier"}, "not ISO-8601 timestamps"),
        ({"method": "time", "holdout": 0.2, "timestamp": "distance"}, "not timestamps or dates"),
        ({"method": "random", "holdout": 1.5}, "between 0 and 1"),
    ],
)
def test_split_errors_name_the_setting(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        split_rows(first_half().slice(0, 1000), **kwargs)  # type: ignore[arg-type]


def test_a_single_instant_cannot_be_split_by_time() -> None:
    one = pa.table({"t": pa.array([datetime(2013, 1, 1, tzinfo=UTC)] * 10), "x": list(range(10))})
    with pytest.raises(ConfigError, match="single instant"):
        split_rows(one, method="time", holdout=0.2, timestamp="t")


@given(
    hours=st.lists(st.integers(min_value=0, max_value=50), min_size=2, max_size=200),
    holdout=st.floats(min_value=0.05, max_value=0.95),
)
def test_time_split_properties(hours: list[int], holdout: float) -> None:
    start = datetime(2013, 1, 1, tzinfo=UTC)
    table = pa.table({"t": pa.array([start + timedelta(hours=h) for h in hours])})
    if len(set(hours)) < 2:
        with pytest.raises(ConfigError):
            split_rows(table, method="time", holdout=holdout, timestamp="t")
        return
    split = split_rows(table, method="time", holdout=holdout, timestamp="t")
    values = np.array(hours)
    assert split.train.size > 0 and split.holdout.size > 0
    assert values[split.train].max() < values[split.holdout].min()
    assert sorted([*split.train.tolist(), *split.holdout.tolist()]) == list(range(len(hours)))


def test_a_training_window_keeps_only_the_newest_rows_in_either_part() -> None:
    start = datetime(2013, 1, 1, tzinfo=UTC)
    times = [start + timedelta(days=d) for d in range(100)]
    table = pa.table({"t": pa.array(times, pa.timestamp("us", tz="UTC")), "x": list(range(100))})
    split = split_rows(table, method="time", holdout=0.2, timestamp="t", window=timedelta(days=29))
    # Days 70-99 take part: 24 train, 6 holdout; days 0-69 are in neither.
    assert split.excluded == 70
    assert split.train.tolist() == list(range(70, 94))
    assert split.holdout.tolist() == list(range(94, 100))
    assert split.describe()["excluded_rows"] == 70
    random_split = split_rows(
        table, method="random", holdout=0.2, timestamp="t", window=timedelta(days=29), seed=3
    )
    assert sorted([*random_split.train, *random_split.holdout]) == list(range(70, 100))


def test_a_training_window_needs_a_timestamp() -> None:
    table = pa.table({"x": list(range(10))})
    with pytest.raises(ConfigError, match=r"training_window needs data\.timestamp"):
        split_rows(table, method="random", holdout=0.2, window=timedelta(days=1))
