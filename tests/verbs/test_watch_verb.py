"""The verb behind each pass of `keel watch`: the CLI's `--json` lists the passes' result
documents, on SQLite and on PostgreSQL, and an orchestrator runs the same pass from Python."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel import WatchPass
from keel.errors import NotFound
from tests.fixtures.cli import Keel
from tests.fixtures.trained import MODEL, write_spec
from tests.verbs.test_verbs import NO_APPROVALS, Calls, _document, _open, calls, flights

__all__ = ["calls", "flights"]  # fixtures shared with test_verbs.py


def test_watch_runs_one_pass_through_the_verb(keel: Keel, flights: Path, calls: Calls) -> None:
    write_spec(flights, NO_APPROVALS)
    with _open(flights) as project:
        assert project.promote(f"{MODEL}@1", "production").outcome == "promoted"
        project.predict_batch(flights / "raw.parquet", flights / "out.parquet", f"{MODEL}@1")
    watched = keel("-C", flights, "watch", "--once", "--json")
    assert watched.code == 0, watched.out + watched.err
    [done] = calls.pop("watch_pass")
    assert isinstance(done, WatchPass)
    [printed] = watched.json()["passes"]
    assert _document(printed) == _document(done.to_dict())
    assert done.canary is None and "canary" not in printed
    assert done.monitor.windows and done.retrain.decision == "not-triggered"

    with _open(flights) as project:
        assert project.promote(f"{MODEL}@1", "canary").outcome == "promoted"
        judged = project.watch_pass(actor="keel-watch")
        assert judged.canary is not None and judged.to_dict()["canary"]["action"]
        with pytest.raises(NotFound, match="nope"):
            project.watch_pass(model="nope")
