"""The stories `keel demo` tells: one per example project, on the same machinery (keel.demo).

A story names its example, the policy the demo writes over the example's keel.yaml, the
months it trains on and replays, and the words that are its own (the rest of the narration is
shared). `flights` (the default) is a classification story, `bikeshare` a regression story on a
daily date column.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from keel.errors import ConfigError

__all__ = ["BIKESHARE", "FLIGHTS", "STORIES", "Story", "story"]


@dataclass(frozen=True)
class Story:
    """What differs between the demo's stories; see keel.demo for the story itself."""

    example: str
    model: str
    #: Written over the example's keel.yaml sections of the same name.
    policy: dict[str, Any]
    #: Seeds the traffic split between production and canary (the server runs in-process).
    seed: int
    #: The time column of the raw rows, sent as ISO text in requests.
    timestamp: str
    target: str
    #: Rows replayed per month (spread over it), and per request.
    per_month: int
    per_request: int
    #: The months init writes (the first model's data), in words.
    trained: str
    #: Months replayed through the server while the first model serves, and in words.
    replayed: tuple[str, ...]
    replayed_words: str
    #: The month split between production and a canary that passes, and the one of the weak canary.
    canary_month: str
    rollback_month: str
    #: How the primary metric is named in the monitoring lines.
    metric_label: str
    #: When the first model is trained, and when the retrained one (the source caught up).
    first_as_of: datetime
    retrain_as_of: datetime
    #: The training params of the deliberately weak model.
    weak_params: dict[str, Any]
    #: Narration of init, the data's months after the replay, and the reviewed contract.
    init_text: str
    caught_up: str
    review_text: str
    #: Step titles that name months.
    canary_title: str
    rollback_title: str


FLIGHTS: Final = Story(
    example="flights",
    model="flights-delay",
    policy={
        "training": {
            "entry_point": "train:train",
            "params": {"max_iter": 60, "learning_rate": 0.1, "max_leaf_nodes": 31},
            "seed": 7,
            "split": {"method": "time", "holdout": 0.2},
        },
        "release": {
            "gates": [
                {"type": "contract_passed"},
                {"type": "inference_contract"},
                {
                    "type": "metric_threshold",
                    "metric": "roc_auc",
                    "min": 0.6,
                    "aliases": ["production"],
                },
                {
                    "type": "beats_champion",
                    "metric": "roc_auc",
                    "margin": -0.01,
                    "alias": "production",
                    "aliases": ["production"],
                },
            ],
            "approvals": {"required": 1, "aliases": ["production", "canary"]},
        },
        # The replayed months hold values the first contract never saw: answered and counted
        # (as the example's keel.yaml says), so monitoring can show the drift.
        "serving": {"canary_share": 0.5, "reload_interval": "200ms"},
        "monitoring": {
            "window": "1d",
            "min_rows": 100,
            "freshness": {"predictions": "1h", "data": False},
        },
        "retraining": {
            "triggers": {
                "drifted_features": 3,
                "performance": {"metric": "roc_auc", "below": 0.68},
            },
            "promotion": "canary",
            "canary": {"duration": "1h", "min_predictions": 100},
        },
    },
    seed=2013,
    timestamp="time_hour",
    target="late",
    per_month=600,
    per_request=25,
    trained="January-June",
    replayed=("2013-07", "2013-08", "2013-09"),
    replayed_words="July-September",
    canary_month="2013-10",
    rollback_month="2013-11",
    metric_label="AUC",
    first_as_of=datetime(2013, 7, 1, 6, tzinfo=UTC),
    retrain_as_of=datetime(2013, 10, 1, 6, tzinfo=UTC),
    weak_params={"max_iter": 1, "max_leaf_nodes": 2, "learning_rate": 0.05},
    init_text=(
        "data/raw holds January-June 2013 as one Parquet file a month (flights joined with "
        "the weather at departure);\ncontracts/raw.yaml was inferred from it: columns, "
        "types, null rates, ranges, categories, freshness."
    ),
    caught_up="January-September 2013",
    review_text=(
        "the source caught up with July-September; the data owner reviewed the contract "
        "for the new months (months 7-9, more rows) and committed it"
    ),
    canary_title="October, split between production and canary; canary analysis",
    rollback_title="a deliberately weak model on canary; November; automatic rollback",
)

#: Rentals an hour. The first model's rmse on its holdout (December 2011) is about 50, on
#: 2012's busier months 100 and more; the retrained model's, on a holdout of February-March
#: 2012, about 85: errors grow with demand, so the limit leaves room for busier seasons.
_RMSE_LIMIT: Final = 100

BIKESHARE: Final = Story(
    example="bikeshare",
    model="bike-rentals",
    policy={
        "training": {
            "entry_point": "train:train",
            "params": {
                "max_iter": 100,
                "learning_rate": 0.1,
                "max_leaf_nodes": 31,
                "loss": "poisson",
            },
            "seed": 7,
            # The newest tenth: the retrained model then learns from most of the 2012 months
            # it is retrained for (a fifth would hold nearly all of them out).
            "split": {"method": "time", "holdout": 0.1},
        },
        "release": {
            "gates": [
                {"type": "contract_passed"},
                {"type": "inference_contract"},
                {
                    "type": "metric_threshold",
                    "metric": "rmse",
                    "max": _RMSE_LIMIT,
                    "aliases": ["production"],
                },
                {
                    "type": "beats_champion",
                    "metric": "rmse",
                    "margin": -2,
                    "alias": "production",
                    "aliases": ["production"],
                },
            ],
            "approvals": {"required": 1, "aliases": ["production", "canary"]},
        },
        # The replayed months hold values the first contract never saw: answered and counted
        # (as the example's keel.yaml says), so monitoring can show the drift.
        "serving": {"canary_share": 0.5, "reload_interval": "200ms"},
        "monitoring": {
            "window": "7d",
            "min_rows": 100,
            "freshness": {"predictions": "1h", "data": False},
        },
        "retraining": {
            "triggers": {
                "drifted_features": 3,
                "performance": {"metric": "rmse", "above": _RMSE_LIMIT},
            },
            "promotion": "canary",
            "canary": {
                "duration": "1h",
                "min_predictions": 100,
                # Rentals an hour: a canary may trail production by at most 5.
                "rollback": {"min_performance_delta": -5},
            },
        },
    },
    seed=2012,
    timestamp="dteday",
    target="cnt",
    per_month=480,
    per_request=24,
    trained="2011",
    replayed=("2012-01", "2012-02", "2012-03"),
    replayed_words="January-March 2012",
    canary_month="2012-04",
    rollback_month="2012-05",
    metric_label="rmse",
    first_as_of=datetime(2012, 1, 1, 6, tzinfo=UTC),
    retrain_as_of=datetime(2012, 4, 1, 6, tzinfo=UTC),
    weak_params={"max_iter": 1, "max_leaf_nodes": 2, "learning_rate": 0.05},
    init_text=(
        "data/raw holds 2011 as one Parquet file a month (hourly rentals with the calendar "
        "and the weather;\nthe day is a plain date, dteday, and the hour of the day is in hr);\n"
        "contracts/raw.yaml was inferred from it: columns, types, null rates (weekday and "
        "weathersit are sometimes missing), ranges, categories, freshness.\n"
        "casual and registered add up to the target, cnt: they are never model inputs."
    ),
    caught_up="January 2011-March 2012",
    review_text=(
        "the source caught up with January-March 2012; the data owner reviewed the contract "
        "for the new months (dates into 2012, busier hours) and committed it"
    ),
    canary_title="April 2012, split between production and canary; canary analysis",
    rollback_title="a deliberately weak model on canary; May 2012; automatic rollback",
)

STORIES: Final = {told.example: told for told in (FLIGHTS, BIKESHARE)}


def story(example: str) -> Story:
    """The story of `example`, or a ConfigError listing the examples that have one."""
    if example not in STORIES:
        raise ConfigError(
            f"--example: no demo for {example!r}; choose one of {', '.join(STORIES)}",
            problems=[("--example", f"unknown example {example!r}")],
        )
    return STORIES[example]
