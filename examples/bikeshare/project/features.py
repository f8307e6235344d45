"""Feature code of the bikeshare example: raw rows in, model features out.

Two functions, two jobs:

- `prepare(rentals)` builds the *raw rows* from the published table: its rows come shuffled, so
  they are put in time order (day, then hour of the day), and `dteday` becomes a date. Every
  column is kept, including `casual` and `registered`: they are what the table holds, and keel.yaml
  says they are never model inputs.
- `build(raw)` turns raw rows into model features. Training and serving call the same function
  (keel packages this file with the model), and each output row depends only on its own input row,
  so one request gets the same features as it would inside a training batch.

Only pandas and numpy are imported: this file runs inside the served model too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: The target: rentals in the hour, all riders.
TARGET = "cnt"
#: `casual` + `registered` = `cnt`: counted in the same hour as the target, so they are the answer
#: itself, never features (keel.yaml excludes them from the model's inputs too).
LEAKING = ("casual", "registered")

#: "12am".."11pm", as the table writes the hour of the day, and its number 0..23.
HOURS = {
    **{f"{12 if h == 0 else h}am": h for h in range(12)},
    **{f"{12 if h == 0 else h}pm": 12 + h for h in range(12)},
}

# Fixed vocabularies of the categorical columns, taken once from the 2011-2012 data. A category's
# code is its position here, so it means the same thing in every batch, including a request of one
# row (codes computed per batch would not); a value not listed here, or a missing one, becomes
# missing, which the model handles. The season names are the table's own.
SEASONS = ("spring", "summer", "fall", "winter")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: Ordered from the best weather to the worst, so the code carries the order too.
WEATHER = ("Clear", "Mist", "Light Rain", "Heavy Rain")
CATEGORIES = {"season": SEASONS, "weekday": WEEKDAYS, "weathersit": WEATHER}
#: Yes/No flags of the day.
FLAGS = ("holiday", "workingday")
#: Weather measurements, used as they are.
MEASUREMENTS = ("temp", "atemp", "hum", "windspeed")
#: The vocabularies as indexes, built once: looking a value up is then one hash probe.
_LOOKUP = {column: pd.Index(vocabulary) for column, vocabulary in CATEGORIES.items()}


def prepare(rentals: pd.DataFrame) -> pd.DataFrame:
    """Raw rows in time order, with `dteday` as a date and every column of the table kept."""
    rows = rentals.copy()
    rows["dteday"] = pd.to_datetime(rows["dteday"]).dt.date
    order = pd.DataFrame({"day": rows["dteday"], "hour": rows["hr"].map(HOURS)})
    rows = rows.loc[order.sort_values(["day", "hour"], kind="stable").index]
    return rows.reset_index(drop=True)


def build(raw: pd.DataFrame) -> pd.DataFrame:
    """Model features of raw rows (extra columns, such as the target, are ignored)."""
    # The columns are gathered first and the frame made once: adding columns to a DataFrame
    # one at a time costs more than the model itself for a request of a few rows.
    features: dict[str, Any] = {}

    # When. A request carries the day as text ("2012-05-14"), a training batch as a date: both
    # parse the same. `year` lets a retrained model learn that 2012 rents more than 2011 (a
    # model trained on 2011 alone has never seen it, and under-predicts 2012).
    day = pd.to_datetime(raw["dteday"])
    features["year"] = day.dt.year.to_numpy(dtype="float64")
    features["month"] = day.dt.month.to_numpy(dtype="float64")
    features["hour"] = raw["hr"].map(HOURS).to_numpy(dtype="float64", na_value=np.nan)

    # Yes/No flags: 1 or 0, missing when neither.
    for column in FLAGS:
        flag = raw[column].map({"Yes": 1.0, "No": 0.0})
        features[column] = flag.to_numpy(dtype="float64", na_value=np.nan)

    # Integer codes from a fixed vocabulary (see CATEGORIES above). Missing stays missing
    # (weekday and weathersit are missing in about 5% and 7% of rows): gradient boosting learns
    # which side of each split they belong to.
    for column, vocabulary in _LOOKUP.items():
        codes = vocabulary.get_indexer(raw[column])  # -1: not listed, or missing
        features[column] = np.where(codes >= 0, codes, np.nan)

    for column in MEASUREMENTS:
        features[column] = raw[column].to_numpy(dtype="float64", na_value=np.nan)
    return pd.DataFrame(features, index=raw.index)
