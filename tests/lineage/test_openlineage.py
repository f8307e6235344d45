"""OpenLineage events: valid against the spec's structure, stable run ids, written as JSON lines."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import pytest

from keel.lineage import (
    FileEmitter,
    HttpEmitter,
    InputDatasetInfo,
    ModelOutputInfo,
    RunInfo,
    complete_event,
    emitter_for,
    event_to_dict,
    fail_event,
    openlineage_run_id,
    start_event,
)

SCHEMA = json.loads(
    (Path(__file__).parent / "openlineage_2_0_2_subset.schema.json").read_text(encoding="utf-8")
)
CORE = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
DIGEST = "blake3:" + "ab" * 32

RUN = RunInfo(
    project="flights",
    keel_run_id="run-20260101-0001",
    dataset=InputDatasetInfo(
        namespace="keel://flights",
        name="datasets/flights",
        version=DIGEST,
        columns=[("carrier", "string"), ("distance", "integer")],
        source_name="flights",
        source_uri="file:///data/flights.csv.gz",
    ),
    keel_version="0.1.0",
)
MODEL = ModelOutputInfo("flights-delay", "3", DIGEST, "sklearn", RUN.keel_run_id, {"auc": 0.71})


def _validate(document: dict[str, Any]) -> None:
    """The core RunEvent schema, then each facet against the schema its `_schemaURL` names."""
    CORE.validate(document)
    assert urlparse(document["producer"]).scheme == "https"
    facets = [
        *document["run"].get("facets", {}).values(),
        *document["job"].get("facets", {}).values(),
        *(f for d in document["inputs"] + document["outputs"] for f in d["facets"].values()),
    ]
    for facet in facets:
        name = facet["_schemaURL"].rpartition("/")[2]
        assert name in SCHEMA["$defs"], f"no schema for facet {name}"
        validator = jsonschema.Draft202012Validator(
            {**SCHEMA, "$ref": f"#/$defs/{name}"}, format_checker=jsonschema.FormatChecker()
        )
        validator.validate(facet)
        assert urlparse(facet["_producer"]).scheme == "https"


def _raised() -> ValueError:
    try:
        raise ValueError("AUC below the gate")
    except ValueError as exc:
        return exc


@pytest.mark.parametrize(
    ("build", "event_type"),
    [
        (lambda: start_event(RUN), "START"),
        (lambda: complete_event(RUN, MODEL), "COMPLETE"),
        (lambda: fail_event(RUN, _raised()), "FAIL"),
        (lambda: fail_event(RunInfo("flights", "r2"), "killed"), "FAIL"),
    ],
)
def test_events_validate(build: Any, event_type: str) -> None:
    document = event_to_dict(build())
    _validate(document)
    assert document["eventType"] == event_type
    assert document["job"] == {**document["job"], "namespace": "flights", "name": "train"}


def test_facets_carry_the_run() -> None:
    start = event_to_dict(start_event(RUN))
    dataset = start["inputs"][0]
    assert dataset["facets"]["version"]["datasetVersion"] == DIGEST
    assert [f["name"] for f in dataset["facets"]["schema"]["fields"]] == ["carrier", "distance"]
    assert dataset["facets"]["dataSource"]["uri"] == "file:///data/flights.csv.gz"
    assert start["run"]["facets"]["processing_engine"]["name"] == "keel"
    output = event_to_dict(complete_event(RUN, MODEL))["outputs"][0]
    assert output["facets"]["keel_model"]["packageDigest"] == DIGEST
    assert output["facets"]["keel_model"]["metrics"] == {"auc": 0.71}
    failed = event_to_dict(fail_event(RUN, _raised()))["run"]["facets"]["errorMessage"]
    assert failed["message"] == "ValueError: AUC below the gate"
    assert "Traceback" in failed["stackTrace"]


def test_run_id_is_a_stable_uuid_of_the_keel_run() -> None:
    ids = {event_to_dict(e)["run"]["runId"] for e in (start_event(RUN), complete_event(RUN, MODEL))}
    assert ids == {str(openlineage_run_id(RUN.keel_run_id))}
    assert uuid.UUID(ids.pop()).version == 5
    assert openlineage_run_id("a") != openlineage_run_id("b")


def test_event_time_is_utc() -> None:
    at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert event_to_dict(start_event(RUN, at=at))["eventTime"] == "2026-01-02T01:04:05.000Z"


def test_file_emitter_appends_one_valid_line_per_event(tmp_path: Path) -> None:
    path = tmp_path / "lineage" / "events.jsonl"
    emitter = emitter_for(path)
    assert isinstance(emitter, FileEmitter)
    emitter.emit(start_event(RUN))
    emitter.emit(complete_event(RUN, MODEL))
    threads = [
        threading.Thread(target=emitter.emit, args=(fail_event(RunInfo("p", f"r{i}"), "x"),))
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 10
    documents = [json.loads(line) for line in lines]
    for document in documents:
        _validate(document)
    assert [d["eventType"] for d in documents[:2]] == ["START", "COMPLETE"]


def test_http_target_uses_the_client_transport() -> None:
    assert isinstance(emitter_for("http://127.0.0.1:5000"), HttpEmitter)


@pytest.mark.parametrize(
    "breaks",
    [
        lambda d: d["run"].pop("runId"),
        lambda d: d["run"].update(runId="not-a-uuid"),
        lambda d: d["job"].pop("namespace"),
        lambda d: d["run"]["facets"]["processing_engine"].pop("_producer"),
        lambda d: d.update(eventTime="yesterday"),
    ],
)
def test_the_schema_check_catches_broken_events(breaks: Any) -> None:
    document = event_to_dict(start_event(RUN))
    breaks(document)
    with pytest.raises(jsonschema.ValidationError):
        _validate(document)


def test_http_emitter_posts_to_a_real_server() -> None:
    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append({"path": self.path, "body": json.loads(self.rfile.read(length))})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass  # keep test output quiet

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        HttpEmitter(f"http://127.0.0.1:{server.server_port}").emit(start_event(RUN))
    finally:
        server.shutdown()
        server.server_close()
    assert [r["path"] for r in received] == ["/api/v1/lineage"]
    _validate(received[0]["body"])
