"""`keel train` on the flights example: lineage, step caching, and what re-runs after an edit."""

from __future__ import annotations

import importlib.util
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from keel.data import read_table
from keel.errors import ContractViolation
from keel.pipeline.train import train
from keel.project import Project

EXAMPLE = Path(__file__).parents[2] / "examples" / "flights"
AS_OF = datetime(2014, 1, 1, 6, tzinfo=UTC)

SPEC = """\
name: flights-delay
data:
  source: raw.parquet
  timestamp: time_hour
  target: late
features: {entry_point: "features:build"}
training:
  entry_point: "train:train"
  params: {max_iter: 50}
  seed: 7
metrics: [roc_auc, log_loss]
"""


def _raw_sample(rows: int = 40_000) -> pa.Table:
    spec = importlib.util.spec_from_file_location(
        "_keel_test_flights_features", EXAMPLE / "project" / "features.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    flights = read_table(EXAMPLE / "data" / "nycflights13_flights.csv.gz").to_pandas()
    weather = read_table(EXAMPLE / "data" / "nycflights13_weather.csv.gz").to_pandas()
    raw = module.prepare(flights, weather).sample(rows, random_state=0).sort_values("time_hour")
    # pyarrow's pandas conversion of tz-aware columns warns on pandas 3.1: convert as UTC.
    raw["time_hour"] = raw["time_hour"].dt.tz_convert(None)
    table = pa.Table.from_pandas(raw, preserve_index=False)
    index = table.schema.get_field_index("time_hour")
    utc = table["time_hour"].cast(pa.timestamp("us", tz="UTC"))
    return table.set_column(index, "time_hour", utc)


def make_project(folder: Path, raw_table: pa.Table, env: dict[str, str]) -> Path:
    """A project with the example's code, SPEC, and `raw_table` as its data source."""
    import pyarrow.parquet as pq

    Project.init(folder, env=env).close()
    (folder / "keel.yaml").write_text(SPEC)
    for name in ("features.py", "train.py"):
        shutil.copy(EXAMPLE / "project" / name, folder / name)
    pq.write_table(raw_table, folder / "raw.parquet")
    return folder


@pytest.fixture(scope="module")
def raw_table() -> pa.Table:
    return _raw_sample()


@pytest.fixture
def project(tmp_path: Path, raw_table: pa.Table) -> Project:

    env = {"KEEL_USER": "ana"}
    return Project.open(make_project(tmp_path / "flights", raw_table, env), env=env)


def test_first_run_trains_and_records_lineage(project: Project) -> None:
    with project:
        result = train(project, as_of=AS_OF)
        assert [s.outcome for s in result.steps if s.step in {"features", "train", "evaluate"}] == [
            "ran",
            "ran",
            "ran",
        ]
        assert result.metrics["roc_auc"] > 0.6
        run = project.metadata.runs.get(result.run_id)
        assert run.status == "completed"
        assert run.dataset == result.dataset.id
        assert run.feature_code_hash and run.training_code_hash and run.environment
        assert run.seed == 7
        names = {a.name for a in project.metadata.runs.artifacts(result.run_id)}
        assert {"environment.json"} <= names
        assert project.artifacts.exists(result.package)
        assert result.registered is not None and result.registered.ref == "flights-delay@1"
        candidate = project.metadata.models.resolve("flights-delay@candidate")
        assert candidate.version == 1 and candidate.run_id == result.run_id
        assert candidate.metrics == result.metrics
        assert {field["name"] for field in candidate.inference_contract["inputs"]} >= {
            "carrier",
            "temp",
            "time_hour",
        }


def test_runs_emit_openlineage_events(project: Project) -> None:
    import json

    from tests.lineage.test_openlineage import _validate

    with project:
        result = train(project, as_of=AS_OF)
    log = project.settings.state_dir / "lineage" / "events.jsonl"
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert events[0]["run"]["runId"] == events[1]["run"]["runId"]
    assert events[0]["inputs"][0]["facets"]["version"]["datasetVersion"] == str(result.dataset.id)
    assert events[1]["outputs"][0]["name"] == "models/flights-delay"
    for event in events:
        _validate(event)


def test_nothing_changed_hits_the_cache_for_every_step(project: Project) -> None:
    with project:
        first = train(project, as_of=AS_OF)
        second = train(project, as_of=AS_OF)
        assert second.cache_hits == ["snapshot", "features", "train", "evaluate"]
        assert second.package == first.package
        assert second.metrics == first.metrics
        assert second.registered is None and second.unchanged.version == 1
        assert "unchanged: same as flights-delay@1" in second.notes[0]
        forced = train(project, as_of=AS_OF, force=True)
        assert forced.cache_hits == ["snapshot"]
        assert forced.registered is not None and forced.registered.version == 2


def test_editing_feature_code_reruns_features_and_training_only(project: Project) -> None:
    with project:
        train(project, as_of=AS_OF)
        features = project.settings.project_dir / "features.py"
        features.write_text(features.read_text() + "\n# a comment changes the fingerprint\n")
        after_features = train(project, as_of=AS_OF)
        assert after_features.cache_hits == ["snapshot"]
        training = project.settings.project_dir / "train.py"
        training.write_text(training.read_text() + "\n# so does this one\n")
        after_training = train(project, as_of=AS_OF)
        assert after_training.cache_hits == ["snapshot", "features"]


def test_a_contract_violation_stops_the_run(project: Project) -> None:
    from keel.contracts import infer_contract, write_contract

    with project:
        table = read_table(project.settings.project_dir / "raw.parquet")
        # The contract expects a column the data does not have.
        wider = table.append_column("gate", pa.array(["A1"] * table.num_rows))
        contract = infer_contract(wider, timestamp="time_hour")
        write_contract(contract, project.settings.project_dir / "contract.yaml")
        spec = project.settings.spec_path
        spec.write_text(
            spec.read_text().replace(
                "  target: late\n", "  target: late\n  contract: contract.yaml\n"
            )
        )
    with Project.open(project.settings.project_dir, env={"KEEL_USER": "ana"}) as reopened:
        with pytest.raises(ContractViolation, match="broke its contract"):
            train(reopened, as_of=AS_OF)
        failed = reopened.metadata.runs.list(limit=1)[0]
        assert failed.status == "failed"
        assert "contract" in (failed.error or "")
        log = reopened.settings.state_dir / "lineage" / "events.jsonl"
        assert log.read_text().splitlines()[-1].count('"eventType":"FAIL"') == 1


def test_training_on_postgresql(
    tmp_path: Path, raw_table: pa.Table, fresh_postgres_url: str
) -> None:

    env = {"KEEL_USER": "ana", "KEEL_DB_URL": fresh_postgres_url}
    folder = make_project(tmp_path / "flights-pg", raw_table, env)
    with Project.open(folder, env=env) as project:
        assert project.metadata.backend == "postgresql"
        first = train(project, as_of=AS_OF)
        assert first.registered is not None and first.registered.version == 1
        again = train(project, as_of=AS_OF)
        assert again.cache_hits == ["snapshot", "features", "train", "evaluate"]
        assert project.metadata.runs.get(again.run_id).status == "completed"


def test_openlineage_target_from_the_environment(tmp_path: Path, raw_table: pa.Table) -> None:

    target = tmp_path / "lineage" / "to-marquez.jsonl"
    env = {"KEEL_USER": "ana", "KEEL_OPENLINEAGE_URL": str(target)}
    folder = make_project(tmp_path / "flights-ol", raw_table, env)
    with Project.open(folder, env=env) as project:
        train(project, as_of=AS_OF)
    assert len(target.read_text().splitlines()) == 2
    assert not (folder / ".keel" / "lineage").exists()

    down = {"KEEL_USER": "ana", "KEEL_OPENLINEAGE_URL": "http://127.0.0.1:1"}
    with Project.open(folder, env=down) as project:
        result = train(project, as_of=AS_OF, force=True)  # the lineage server is down
    assert result.registered is not None
    assert any("OpenLineage event not delivered" in note for note in result.notes)
