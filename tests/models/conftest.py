"""A small real training set (flights) and a project whose feature code builds the features."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

FLIGHTS = (
    Path(__file__).parents[2] / "examples" / "flights" / "data" / "nycflights13_flights.csv.gz"
)
RAW_COLUMNS = ["month", "dep_delay", "distance", "hour", "carrier", "origin"]

FEATURES_PY = """\
import pandas as pd

from helpers import is_summer


def build(raw: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "dep_delay": raw["dep_delay"].fillna(0.0),
            "distance": raw["distance"].astype("float64"),
            "evening": (raw["hour"] >= 17).astype("int64"),
            "summer": is_summer(raw["month"]),
            "carrier": raw["carrier"].astype(str),
        }
    )
"""

HELPERS_PY = """\
def is_summer(month):
    return month.isin([6, 7, 8]).astype("int64")
"""


@pytest.fixture(scope="session")
def flights() -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_csv(FLIGHTS, nrows=3000).dropna(subset=["arr_delay"])
    return frame[RAW_COLUMNS].reset_index(drop=True), (frame["arr_delay"] > 15).astype(int)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "features.py").write_text(FEATURES_PY, encoding="utf-8")
    (root / "helpers.py").write_text(HELPERS_PY, encoding="utf-8")
    return root


def classifier() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = ColumnTransformer(
        [("carrier", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["carrier"])],
        remainder="passthrough",
    )
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0)
    return Pipeline([("encode", encode), ("model", model)])
