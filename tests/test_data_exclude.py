"""keel.yaml's `data.exclude`: raw columns that stay in the data but are never model inputs."""

from __future__ import annotations

import pytest
import yaml

from keel.errors import ConfigError
from keel.spec import parse_spec

BASE = {
    "version": 1,
    "name": "rentals",
    "data": {
        "source": "data/hourly.csv",
        "target": "cnt",
        "timestamp": "dteday",
        "entity_key": ["instant"],
    },
}


def _spec(exclude: object) -> str:
    document = {**BASE, "data": {**BASE["data"], "exclude": exclude}}  # type: ignore[dict-item]
    return yaml.safe_dump(document)


def test_excluded_columns_are_not_model_inputs() -> None:
    data = parse_spec(_spec(["casual", "registered"])).data
    assert data is not None
    assert parse_spec(_spec("casual")).data.exclude == ["casual"]  # type: ignore[union-attr]
    columns = ["instant", "dteday", "hr", "temp", "casual", "registered", "cnt"]
    assert data.model_inputs(columns) == ["instant", "dteday", "hr", "temp"]
    assert parse_spec(yaml.safe_dump(BASE)).data.model_inputs(columns) == [  # type: ignore[union-attr]
        "instant",
        "dteday",
        "hr",
        "temp",
        "casual",
        "registered",
    ]


@pytest.mark.parametrize(
    ("exclude", "key", "problem"),
    [
        (["cnt"], "data.exclude", "column 'cnt' is data.target and cannot be excluded"),
        (["dteday"], "data.exclude", "column 'dteday' is data.timestamp and cannot be excluded"),
        (
            ["casual", "instant"],
            "data.exclude",
            "column 'instant' is data.entity_key and cannot be excluded",
        ),
        (["casual", "casual"], "data.exclude", "column 'casual' is listed twice"),
        ([" "], "data.exclude", "expected column names, got an empty one"),
        (["casual", 3], "data.exclude[1]", "expected a string"),
    ],
)
def test_a_bad_exclude_names_the_key_and_the_column(
    exclude: object, key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_spec(_spec(exclude))
    assert [(k, rule[: len(problem)]) for k, rule in caught.value.problems] == [(key, problem)]


def test_excluding_a_column_the_data_lacks_names_it() -> None:
    data = parse_spec(_spec(["casual", "registred"])).data
    assert data is not None
    with pytest.raises(ConfigError) as caught:
        data.model_inputs(["instant", "dteday", "casual", "registered", "cnt"])
    assert caught.value.message.startswith("data.exclude: column 'registred' is not in the data")
    assert caught.value.problems == [("data.exclude", "'registred' is not a column")]
