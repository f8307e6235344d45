"""`keel init --example flights`: a complete project on the nycflights13 data, ready to train.

The example ships inside the package (no download): the flights and weather tables, the user
code (`features.py`: `prepare` joins the weather at departure to each flight, `build` turns raw
rows into features; `train.py`), and a keel.yaml. Init runs `features.prepare` once per month
of January-June into `data/raw/2013-MM.parquet`: the raw rows requests carry. The folder is the
data source, so adding a month later makes a new dataset version (the demo's replay does this).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any, Final

from keel.errors import ConfigError, Conflict

__all__ = ["EXAMPLES", "example_root", "prepare_months", "write_example"]

EXAMPLES: Final = ("flights",)
TRAINING_MONTHS: Final = range(1, 7)

_SPEC: Final = """\
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


def example_root(name: str) -> Path:
    """Where the example's files are: inside the installed package, or in a source checkout."""
    if name not in EXAMPLES:
        raise ConfigError(
            f"--example: unknown example {name!r}; known: {', '.join(EXAMPLES)}",
            problems=[("--example", f"unknown example {name!r}")],
        )
    here = Path(__file__).resolve().parent
    for candidate in (here / "_examples" / name, here.parents[1] / "examples" / name):
        if (candidate / "project" / "features.py").is_file():
            return candidate
    raise ConfigError(f"the {name} example is missing from this installation of keel")


def _load_features(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("_keel_example_features", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare_months(project_dir: Path, months: range | list[int]) -> list[Path]:
    """Write `data/raw/2013-MM.parquet` for each month with the example's `features.prepare`."""
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    from keel.data import read_table

    features = _load_features(project_dir / "features.py")
    flights = read_table(project_dir / "data" / "nycflights13_flights.csv.gz").to_pandas()
    weather = read_table(project_dir / "data" / "nycflights13_weather.csv.gz").to_pandas()
    raw = features.prepare(flights, weather)
    out = project_dir / "data" / "raw"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for month in months:
        part = raw[raw["month"] == month].sort_values("time_hour").reset_index(drop=True)
        # pyarrow's conversion of tz-aware pandas columns warns on pandas 3.1: go through UTC.
        part["time_hour"] = part["time_hour"].dt.tz_convert(None)
        table = pa.Table.from_pandas(part, preserve_index=False)
        index = table.schema.get_field_index("time_hour")
        table = table.set_column(
            index, "time_hour", table["time_hour"].cast(pa.timestamp("us", tz="UTC"))
        )
        path = out / f"2013-{month:02d}.parquet"
        pq.write_table(table, path, compression="zstd")
        written.append(path)
    return written


def write_example(name: str, directory: Path, *, user: str, force: bool = False) -> Path:
    """Copy the example into `directory`, prepare its first months and infer its contract."""
    from datetime import UTC, datetime

    from keel.contracts import infer_contract, write_contract
    from keel.data import read_table
    from keel.scaffold import _yaml_scalar

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
    prepare_months(directory, TRAINING_MONTHS)
    reference = read_table(data / "raw")
    contract = infer_contract(
        reference,
        timestamp="time_hour",
        source="data/raw (January-June 2013)",
        inferred_at=datetime.now(UTC),
    )
    write_contract(contract, directory / "contracts" / "raw.yaml")
    spec_path.write_text(_SPEC.format(user=_yaml_scalar(user)), encoding="utf-8")
    gitignore = directory / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text(".keel/\n", encoding="utf-8")
    return spec_path
