"""Feature code of the flights example: raw rows in, model features out.

Two functions, two jobs:

- `prepare(flights, weather)` builds the *raw rows*: one row per flight that arrived, with the
  flight's own fields, the weather observed at its airport in the hour of departure, and the label
  `late`. Raw rows are exactly what a prediction request carries (minus the label).
- `build(raw)` turns raw rows into model features. Training and serving call the same function
  (keel packages this file with the model), and each output row depends only on its own input row,
  so one request gets the same features as it would inside a training batch.

Only pandas and numpy are imported: this file runs inside the served model too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: The flight's own fields a request carries. Never add dep_time, dep_delay, arr_time, air_time or
#: arr_delay: they are only known once the flight has left (or landed), so they leak the answer.
FLIGHT_COLUMNS = [
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "sched_dep_time",
    "sched_arr_time",
    "carrier",
    "flight",
    "tailnum",
    "origin",
    "dest",
    "distance",
    "time_hour",
]

#: Weather observed at the origin airport in the hour of scheduled departure.
WEATHER_COLUMNS = [
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "wind_gust",
    "precip",
    "pressure",
    "visib",
]

#: A flight is "late" when it arrives more than this many minutes after its scheduled time.
LATE_AFTER_MINUTES = 15

# Fixed vocabularies of the categorical columns, taken once from the 2013 data. A category's
# code is its position here, so it means the same thing in every batch, including a request of
# one row (codes computed per batch would not); a value not listed here (a new carrier, say)
# becomes missing, which the model handles.
CARRIERS = (
    "9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA", "US", "VX", "WN", "YV",
)  # fmt: skip
ORIGINS = ("EWR", "JFK", "LGA")
DESTINATIONS = (
    "ABQ", "ACK", "ALB", "ANC", "ATL", "AUS", "AVL", "BDL", "BGR", "BHM", "BNA", "BOS", "BQN",
    "BTV", "BUF", "BUR", "BWI", "BZN", "CAE", "CAK", "CHO", "CHS", "CLE", "CLT", "CMH", "CRW",
    "CVG", "DAY", "DCA", "DEN", "DFW", "DSM", "DTW", "EGE", "EYW", "FLL", "GRR", "GSO", "GSP",
    "HDN", "HNL", "HOU", "IAD", "IAH", "ILM", "IND", "JAC", "JAX", "LAS", "LAX", "LEX", "LGA",
    "LGB", "MCI", "MCO", "MDW", "MEM", "MHT", "MIA", "MKE", "MSN", "MSP", "MSY", "MTJ", "MVY",
    "MYR", "OAK", "OKC", "OMA", "ORD", "ORF", "PBI", "PDX", "PHL", "PHX", "PIT", "PSE", "PSP",
    "PVD", "PWM", "RDU", "RIC", "ROC", "RSW", "SAN", "SAT", "SAV", "SBN", "SDF", "SEA", "SFO",
    "SJC", "SJU", "SLC", "SMF", "SNA", "SRQ", "STL", "STT", "SYR", "TPA", "TUL", "TVC", "TYS",
    "XNA",
)  # fmt: skip
CATEGORIES = {"carrier": CARRIERS, "origin": ORIGINS, "dest": DESTINATIONS}
#: The vocabularies as indexes, built once: looking a value up is then one hash probe.
_LOOKUP = {column: pd.Index(vocabulary) for column, vocabulary in CATEGORIES.items()}


def prepare(flights: pd.DataFrame, weather: pd.DataFrame) -> pd.DataFrame:
    """Raw training rows: flights that arrived, joined with the weather at departure, plus `late`.

    Cancelled and diverted flights have no `arr_delay` and are dropped: they have no label.
    """
    flown = flights[flights["arr_delay"].notna()]
    rows = flown[FLIGHT_COLUMNS].copy()
    rows["time_hour"] = pd.to_datetime(rows["time_hour"], utc=True)

    observed = weather[["origin", "time_hour", *WEATHER_COLUMNS]].copy()
    observed["time_hour"] = pd.to_datetime(observed["time_hour"], utc=True)
    # One observation per airport and hour, or the join would duplicate flights.
    observed = observed.drop_duplicates(["origin", "time_hour"], keep="first")

    # A left join keeps every flight; an hour without an observation gives missing weather.
    rows = rows.merge(observed, on=["origin", "time_hour"], how="left", validate="many_to_one")
    rows["late"] = (flown["arr_delay"].to_numpy() > LATE_AFTER_MINUTES).astype(np.int64)
    return rows


def build(raw: pd.DataFrame) -> pd.DataFrame:
    """Model features of raw rows (extra columns, such as the label, are ignored)."""
    # The columns are gathered first and the frame made once: adding columns to a DataFrame
    # one at a time costs more than the model itself for a request of a few rows.
    features: dict[str, Any] = {}

    # When: the scheduled local departure. The date comes from year/month/day (the local date):
    # time_hour is UTC, so an evening flight would otherwise land on the next day.
    date = pd.to_datetime(
        pd.DataFrame({"year": raw["year"], "month": raw["month"], "day": raw["day"]})
    )
    # Under a time split, later months are unseen in training and the trees treat them like
    # the last month seen; retraining through the year is what teaches the model the seasons.
    features["month"] = raw["month"].to_numpy(dtype="float64")
    features["day_of_week"] = date.dt.day_of_week.to_numpy(dtype="float64")
    features["dep_hour"] = raw["hour"].to_numpy(dtype="float64")
    departure = _minutes(raw["sched_dep_time"])
    features["dep_minute_of_day"] = departure

    # How long: the scheduled block time. Times are local hhmm, so this includes the time zone
    # difference (fine for a tree: it is constant per route), and a flight that lands after
    # midnight wraps around.
    features["scheduled_block_minutes"] = (_minutes(raw["sched_arr_time"]) - departure) % (24 * 60)
    features["distance"] = raw["distance"].to_numpy(dtype="float64")

    # Weather at departure, as observed. Missing values stay missing: gradient boosting learns
    # which side of each split they belong to.
    for column in WEATHER_COLUMNS:
        features[column] = raw[column].to_numpy(dtype="float64", na_value=np.nan)

    # Who and where: integer codes from a fixed vocabulary (see CATEGORIES above), missing when
    # the value is unknown.
    for column, vocabulary in _LOOKUP.items():
        codes = vocabulary.get_indexer(raw[column])  # -1: not listed, or missing
        features[column] = np.where(codes >= 0, codes, np.nan)
    return pd.DataFrame(features, index=raw.index)


def _minutes(hhmm: pd.Series) -> np.ndarray:
    """Minutes after midnight of a local time written as hhmm (e.g. 1545 -> 945)."""
    value = hhmm.to_numpy(dtype="float64", na_value=np.nan)
    return (value // 100) * 60 + value % 100
