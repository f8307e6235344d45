"""OpenLineage run events for keel training runs, built with the openlineage-python client.

A keel run becomes one OpenLineage run of the job `<project>/train`: a START event when it
begins, then COMPLETE (with the registered model version as output dataset) or FAIL (with an
error message facet). The run id is a UUID derived from the keel run id, so the three events of
a run, and any re-emission, share it.

Emission goes to a JSON-lines file (one `write` per event on an `O_APPEND` descriptor, so
concurrent writers never interleave) or to an HTTP endpoint through the client's HttpTransport.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol

from keel.errors import ConfigError

if TYPE_CHECKING:
    from openlineage.client.event_v2 import RunEvent

__all__ = [
    "JOB_NAME",
    "FileEmitter",
    "HttpEmitter",
    "InputDatasetInfo",
    "LineageEmitter",
    "ModelOutputInfo",
    "RunInfo",
    "complete_event",
    "emitter_for",
    "event_to_dict",
    "fail_event",
    "openlineage_run_id",
    "start_event",
]

JOB_NAME: Final = "train"
PRODUCER: Final = "https://github.com/keelml/keel"
#: Namespace of the UUIDv5 run ids; fixed forever, or re-emitted events would change their ids.
_RUN_ID_NAMESPACE: Final = uuid.UUID("6f0c1c44-2d0a-4c1e-9a51-6b8f4c3f0e7a")
_KEEL_FACET_SCHEMA: Final = (
    "https://github.com/keelml/keel/blob/main/docs/openlineage/KeelModelVersionDatasetFacet.json"
)


def openlineage_run_id(keel_run_id: str) -> uuid.UUID:
    """The OpenLineage run id of a keel run: a UUIDv5 of the keel run id, stable across calls."""
    return uuid.uuid5(_RUN_ID_NAMESPACE, keel_run_id)


@dataclass(frozen=True, slots=True)
class InputDatasetInfo:
    """The dataset version a run trained on.

    `columns` are (name, type) pairs; `source_uri` is where the data was read from.
    """

    namespace: str
    name: str
    version: str
    columns: Sequence[tuple[str, str]] = ()
    source_name: str | None = None
    source_uri: str | None = None


@dataclass(frozen=True, slots=True)
class ModelOutputInfo:
    """The model version a run registered: the output dataset of the COMPLETE event."""

    name: str
    version: str
    package_digest: str
    flavor: str
    keel_run_id: str
    metrics: dict[str, float] | None = None


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What every event of a run repeats: the project (job namespace), run id and input."""

    project: str
    keel_run_id: str
    dataset: InputDatasetInfo | None = None
    keel_version: str = "unknown"


def _client() -> Any:
    # Imported on first use, not with this module: the client takes about half a second to
    # import, and `keel lineage`, `keel explain` and the web UI load keel.lineage without
    # ever emitting an event.
    from openlineage.client import event_v2, facet_v2

    return event_v2, facet_v2


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _event(
    run: RunInfo,
    event_type: str,
    at: dt.datetime | None,
    *,
    outputs: list[Any] | None = None,
    extra_run_facets: dict[str, Any] | None = None,
) -> RunEvent:
    event_v2, facet_v2 = _client()
    from openlineage.client import __version__ as client_version

    run_facets: dict[str, Any] = {
        "processing_engine": facet_v2.processing_engine_run.ProcessingEngineRunFacet(
            version=run.keel_version,
            name="keel",
            openlineageAdapterVersion=client_version,
            producer=PRODUCER,
        ),
        **(extra_run_facets or {}),
    }
    job_facets = {
        "jobType": facet_v2.job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="KEEL", jobType="TRAINING", producer=PRODUCER
        )
    }
    inputs = [] if run.dataset is None else [_input_dataset(run.dataset, facet_v2, event_v2)]
    when = (at or _now()).astimezone(dt.UTC)
    return event_v2.RunEvent(  # type: ignore[no-any-return]
        eventType=getattr(event_v2.RunState, event_type),
        eventTime=when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        run=event_v2.Run(runId=str(openlineage_run_id(run.keel_run_id)), facets=run_facets),
        job=event_v2.Job(namespace=run.project, name=JOB_NAME, facets=job_facets),
        inputs=inputs,
        outputs=outputs or [],
        producer=PRODUCER,
    )


def _input_dataset(dataset: InputDatasetInfo, facet_v2: Any, event_v2: Any) -> Any:
    facets: dict[str, Any] = {
        "version": facet_v2.dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=dataset.version, producer=PRODUCER
        ),
    }
    if dataset.columns:
        schema = facet_v2.schema_dataset
        facets["schema"] = schema.SchemaDatasetFacet(
            fields=[schema.SchemaDatasetFacetFields(name=n, type=t) for n, t in dataset.columns],
            producer=PRODUCER,
        )
    if dataset.source_name or dataset.source_uri:
        facets["dataSource"] = facet_v2.datasource_dataset.DatasourceDatasetFacet(
            name=dataset.source_name or dataset.name, uri=dataset.source_uri, producer=PRODUCER
        )
    return event_v2.InputDataset(namespace=dataset.namespace, name=dataset.name, facets=facets)


def start_event(run: RunInfo, *, at: dt.datetime | None = None) -> RunEvent:
    """The START event: job, run id, processing engine, and the input dataset."""
    return _event(run, "START", at)


def complete_event(
    run: RunInfo, model: ModelOutputInfo, *, at: dt.datetime | None = None
) -> RunEvent:
    """The COMPLETE event, with the registered model version as output dataset.

    The output carries a version facet and a custom `keel_model` facet (name, version, package
    digest, flavor, metrics), named with the producer's prefix as the spec asks of custom facets.
    """
    event_v2, facet_v2 = _client()
    keel_facet = _keel_facet_class()(
        name=model.name,
        version=model.version,
        packageDigest=model.package_digest,
        flavor=model.flavor,
        keelRunId=model.keel_run_id,
        metrics=dict(model.metrics or {}),
        producer=PRODUCER,
    )
    output = event_v2.OutputDataset(
        namespace=run.project,
        name=f"models/{model.name}",
        facets={
            "version": facet_v2.dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=model.version, producer=PRODUCER
            ),
            "keel_model": keel_facet,
        },
    )
    return _event(run, "COMPLETE", at, outputs=[output])


def fail_event(
    run: RunInfo, error: BaseException | str, *, at: dt.datetime | None = None
) -> RunEvent:
    """The FAIL event, with an error message facet (and the stack trace for an exception)."""
    _, facet_v2 = _client()
    if isinstance(error, BaseException):
        message = f"{type(error).__name__}: {error}"
        stack: str | None = "".join(traceback.format_exception(error))
    else:
        message, stack = error, None
    facet = facet_v2.error_message_run.ErrorMessageRunFacet(
        message=message, programmingLanguage="python", stackTrace=stack, producer=PRODUCER
    )
    return _event(run, "FAIL", at, extra_run_facets={"errorMessage": facet})


_KEEL_FACET: list[type] = []


def _keel_facet_class() -> type:
    """The custom facet class, defined on first use (it subclasses the client's, which is
    imported only when an event is built)."""
    if _KEEL_FACET:
        return _KEEL_FACET[0]
    import attr
    from openlineage.client.generated.base import DatasetFacet

    @attr.define
    class KeelModelVersionDatasetFacet(DatasetFacet):
        name: str
        version: str
        packageDigest: str  # camelCase: OpenLineage facets' convention
        flavor: str
        keelRunId: str
        metrics: dict[str, float] = attr.field(factory=dict)

        @staticmethod
        def _get_schema() -> str:
            return f"{_KEEL_FACET_SCHEMA}#/$defs/KeelModelVersionDatasetFacet"

    _KEEL_FACET.append(KeelModelVersionDatasetFacet)
    return KeelModelVersionDatasetFacet


def event_to_dict(event: RunEvent) -> dict[str, Any]:
    """The event as the JSON document OpenLineage consumers expect (nulls dropped)."""
    from openlineage.client.serde import Serde

    return Serde.to_dict(event)


class LineageEmitter(Protocol):
    """Where events go."""

    def emit(self, event: RunEvent) -> None: ...


class FileEmitter:
    """Appends each event as one JSON line to a file.

    The line is written with a single `write` on an `O_APPEND` descriptor and fsynced, so
    concurrent runs appending to one file never interleave and an emitted event survives a crash.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def emit(self, event: RunEvent) -> None:
        line = json.dumps(event_to_dict(event), sort_keys=True, separators=(",", ":")) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            data = line.encode()
            written = os.write(fd, data)
            if written != len(data):
                # Regular files do not short-write short lines; if one ever does, say so.
                raise OSError(f"short write to {self.path}: {written} of {len(data)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)


class HttpEmitter:
    """Posts events to an OpenLineage HTTP endpoint (Marquez, DataHub...) with the client's
    HttpTransport: `url` is the server root, `endpoint` the API path."""

    timeout_s: ClassVar[float] = 5.0

    def __init__(self, url: str, *, endpoint: str = "api/v1/lineage", api_key: str | None = None):
        from openlineage.client.transport.http import HttpConfig, HttpTransport

        params: dict[str, Any] = {
            "url": url,
            "endpoint": endpoint,
            "timeout": self.timeout_s,
            # Best effort with a short retry: a lineage backend that is down must not hold
            # training up for long (the client's default backs off for tens of seconds).
            "retry": {"total": 2, "connect": 2, "read": 2, "backoff_factor": 0.1},
        }
        if api_key:
            params["auth"] = {"type": "api_key", "apiKey": api_key}
        self._transport = HttpTransport(HttpConfig.from_dict(params))

    def emit(self, event: RunEvent) -> None:
        self._transport.emit(event)


def emitter_for(target: str | Path) -> LineageEmitter:
    """An emitter from a setting: `http(s)://...` posts, anything else is a JSON-lines file path."""
    text = str(target)
    if text.startswith(("http://", "https://")):
        return HttpEmitter(text)
    if not text:
        raise ConfigError("the OpenLineage target is empty: give a file path or an http(s) URL")
    return FileEmitter(Path(text))
