"""A version registered by an older keel keeps its reference: a reference profile stored with
sketch version 1 (numbers in log buckets only, rare categories in one `other`) still loads
and is compared with windows sketched now, on SQLite and PostgreSQL. It is not rebuilt."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import update

from keel.domain.digest import Digest
from keel.metadata.sql.engine import create_metadata_engine, write_transaction
from keel.metadata.sql.schema import reference_profiles
from keel.project import Project
from keel.stats.drift import compare_sketches
from keel.stats.sketch import TableSketch
from tests.fixtures.trained import MODEL, TrainedOnPostgres, write_spec

#: Production moves at once (by default it needs an approval).
NO_APPROVALS = {"approvals": {"required": 0}}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def flights(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Path:
    """The trained flights project, its store on each backend."""
    monkeypatch.delenv("KEEL_DB_URL", raising=False)
    if request.param == "sqlite":
        folder: Path = request.getfixturevalue("release_project")
        return folder
    template: TrainedOnPostgres = request.getfixturevalue("trained_postgres_template")
    url: str = request.getfixturevalue("trained_postgres_url")
    folder = tmp_path / "flights"
    shutil.copytree(template.folder, folder)
    monkeypatch.setenv("KEEL_DB_URL", url)
    return folder


def _open(folder: Path) -> Project:
    env = {"KEEL_USER": "ana"}
    if "KEEL_DB_URL" in os.environ:
        env["KEEL_DB_URL"] = os.environ["KEEL_DB_URL"]
    return Project.open(folder, env=env)


def _version_one(document: dict[str, Any]) -> dict[str, Any]:
    """A sketch document as sketch version 1 wrote it: no linear grids, no tail buckets."""
    columns = []
    for column in document["columns"]:
        column = {key: value for key, value in column.items() if key != "tail"}
        if "sketch" in column:
            column["sketch"] = {k: v for k, v in column["sketch"].items() if k != "linear"}
        columns.append(column)
    header = {k: v for k, v in document.items() if k not in ("linear_bins", "tail_buckets")}
    return {**header, "version": 1, "columns": columns}


def test_a_reference_stored_by_sketch_version_one_is_still_monitored(flights: Path) -> None:
    write_spec(flights, NO_APPROVALS)
    with _open(flights) as project:
        assert project.promote(f"{MODEL}@1", "production").outcome == "promoted"
        # The reference as an older keel stored it when it registered version 1.
        recorded = project.metadata.monitoring.reference(MODEL, 1)
        assert recorded is not None
        stored = json.loads(project.artifacts.read_bytes(Digest.parse(recorded.profile)))
        old = {
            **stored,
            "inputs": _version_one(stored["inputs"]),
            "holdout": _version_one(stored["holdout"]),
        }
        data = json.dumps(old, separators=(",", ":"), sort_keys=True).encode()
        digest = project.artifacts.put_bytes(data).digest
        project.metadata.artifacts.record(
            digest, size=len(data), media_type="application/json", actor="ana"
        )
        engine = create_metadata_engine(project.settings.db_url)
        try:
            with write_transaction(engine) as conn:
                conn.execute(
                    update(reference_profiles)
                    .where(reference_profiles.c.model == MODEL, reference_profiles.c.version == 1)
                    .values(profile=str(digest))
                )
        finally:
            engine.dispose()

        rows = pq.read_table(flights / "raw.parquet").slice(0, 300)
        pq.write_table(rows, flights / "in.parquet")
        batch = project.predict_batch(
            flights / "in.parquet", flights / "out.parquet", f"{MODEL}@production"
        )
        assert batch.rows == 300
        report = project.monitor(record=False)

        # Read, not rebuilt: the version 1 document is the reference, and stays recorded.
        again = project.metadata.monitoring.reference(MODEL, 1)
        assert again is not None and again.profile == str(digest)
    numbers = [c for c in report.reference.columns.values() if c.numeric is not None]
    assert numbers and not any(c.numeric.has_linear for c in numbers if c.numeric)
    (window,) = [w for w in report.windows if w.rows]
    assert window.rows == 300 and window.judged and window.drift
    # Compared as version 1 compared: the same results as from the stored sketch itself.
    reference = TableSketch(columns=report.reference.columns, rows=report.reference.rows)
    expected = compare_sketches(reference, window.sketch, columns=[d.column for d in window.drift])
    assert [d.to_dict() for d in window.drift] == [e.to_dict() for e in expected]
