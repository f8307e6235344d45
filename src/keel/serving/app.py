"""`keel serve`'s inference app: the Open Inference Protocol (v2 REST), plain JSON `/predict`,
`/metrics` for Prometheus and an OpenAPI document. `keel.server` serves the registry API
(`/api/v1`) and the web UI (`/ui`) on the same port by handing their routes in as `mounts`.

    GET  /v2                                   server metadata
    GET  /v2/health/live | /v2/health/ready
    GET  /v2/models/{name}[/versions/{v}]      model metadata: inputs and outputs with datatypes
    GET  /v2/models/{name}[/versions/{v}]/ready
    POST /v2/models/{name}[/versions/{v}]/infer
    POST /predict                              records in, one prediction (with its id) per record
    POST /models/{name}/predict
    GET  /metrics                              Prometheus text format
    GET  /openapi.json
    POST /v1/feedback                          delayed labels (a token that may label, JSON only)

A request is answered by the model's `production` holder, or its `canary` holder for the
configured share of requests; shadow holders score it too, off the request path, and are
logged but never returned. Every row gets a prediction id, returned to the caller and
written with the prediction to the prediction log, off the request path.

About 770 lines, one module on purpose: every handler is a method of `ServingApp` and works
on the state it holds for the request path (the routes and their loaded versions, the
prediction log, the model's thread, the shutdown drain); the codec (`keel.serving.codec`),
routing (`slots`), adaptive batching (`batching`), bodies (`deadline`), auth and the log
already live apart.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from keel.domain.model import MODEL_NAME_RULE, VERSION_RULE, is_model_name, parse_version_number
from keel.errors import StoreError, UserCodeError, error_code
from keel.predlog.ids import new_prediction_id
from keel.predlog.log import NullPredictionLog, PredictionBatch, PredictionLog
from keel.serving.batching import Batcher
from keel.serving.binary import HEADER as BINARY_HEADER
from keel.serving.binary import decode_binary_inputs, encode_binary_outputs, split_body
from keel.serving.codec import (
    BadRequest,
    Batch,
    Problem,
    bound_problems,
    decode_oip,
    decode_records,
    encode_oip,
    oip_datatype,
    parse_json,
    unparsable,
)
from keel.serving.deadline import BodyDeadline
from keel.serving.metrics import (
    CONTENT_TYPE,
    PredictionLogCollector,
    PredictionLogGauges,
    ServingMetrics,
)
from keel.serving.slots import Route as ModelRoute
from keel.serving.slots import ServedVersion
from keel.serving.state import ServingState
from keel.version import __version__

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["SERVER_METADATA", "Scored", "Service", "ServingApp", "create_app"]

_log = logging.getLogger(__name__)

#: Requests with more rows than this are predicted in a worker thread, not on the event loop.
_INLINE_ROWS: Final = 256
#: Shadow scorings waiting beyond this are skipped (and counted), never slowing requests.
_SHADOW_QUEUE: Final = 256
#: How long a request waits for room in a full prediction log before it is refused (503).
_LOG_WAIT_S: Final = 10.0
#: Requests outside the input contract under `warn` are logged at most this often a version.
_BOUNDS_LOG_EVERY_S: Final = 60.0
#: How often a server compacts logged predictions into Parquet segments (seconds).
_COMPACT_EVERY_S: Final = 600.0
#: Of serving.shutdown_timeout, what is kept for spilling the log to the spool (seconds).
_SPILL_MARGIN_S: Final = 1.0


#: What the server says it is, over HTTP (`GET /v2`) and gRPC (ServerMetadata).
SERVER_METADATA: Final = {"name": "keel", "version": __version__, "extensions": ["keel-predict"]}


@dataclass(frozen=True)
class Scored:
    """A request answered: the version and slot that answered it, its rows, and for each
    row its prediction id and outputs (already logged and counted)."""

    model: str
    served: ServedVersion
    slot: str
    batch: Batch
    ids: list[str]
    outputs: dict[str, list[Any]]

    def oip(self) -> dict[str, Any]:
        """The Open Inference Protocol's response document: the outputs the request named
        (or all), the first prediction id as `id` and every id in `parameters`."""
        return encode_oip(
            model=self.model,
            version=self.served.version,
            prediction_ids=self.ids,
            outputs=self.outputs,
            contract=self.served.contract,
            wanted=self.batch.outputs,
            parameters={"slot": self.slot}
            | ({"client_id": self.batch.client_id} if self.batch.client_id else {}),
        )


def _json(document: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(document), status_code=status, media_type="application/json")


def _error(
    status: int,
    message: str,
    problems: list[Problem] | None = None,
    details: dict[str, Any] | None = None,
) -> Response:
    document: dict[str, Any] = {"error": message}
    if problems:
        document["problems"] = [p.to_dict() for p in problems]
    return _json(document | (details or {}), status)


#: Longest exception message quoted back to a client whose request the model failed on.
_QUOTED_CHARS: Final = 500


def _model_failure(served: ServedVersion, exc: Exception) -> BadRequest:
    """The 422 for a request the model's own code (its feature code, its estimator) raised on.

    The request passed the inference contract, so the client learns that the model, not the
    request's shape, refused it: which model and version, and the exception's type and
    message (values out of what the model was trained on usually end up here). The
    traceback is for the model's owner: it goes to the server's log, once.
    """
    _log.warning("%s failed on a request valid for its contract", served.ref, exc_info=exc)
    cause = exc.__cause__ if isinstance(exc, UserCodeError) and exc.__cause__ else exc
    kind = exc.exception if isinstance(exc, UserCodeError) and exc.exception else None
    kind = kind or type(cause).__name__
    text = str(cause)
    if len(text) > _QUOTED_CHARS:
        text = text[: _QUOTED_CHARS - 3] + "..."
    entry_point = exc.entry_point if isinstance(exc, UserCodeError) else "the model"
    where = ""
    if isinstance(exc, UserCodeError) and exc.file:
        where = f" in {exc.file}" + (f", line {exc.line}" if exc.line else "")
    return BadRequest(
        422,
        f"{served.ref} could not score this request: {entry_point} failed{where} "
        f"({kind}: {text}); the request is valid for the inference contract, so a value is "
        "likely outside what the model was trained on",
        [Problem("model", "the model's code scores the request", f"{kind}: {text}")],
        {
            "model": served.model,
            "version": served.version,
            "exception": {"type": kind, "message": text},
        },
    )


def _single_threaded_math() -> None:
    """One OpenMP/BLAS thread per call. Requests are one or a few rows: a thread team gains
    nothing there, and idle teams spin-waiting in several request threads starve each other
    (measured: 170 ms instead of 6 ms for one HistGradientBoosting row on 2 busy cores).

    OpenMP's limit is per thread, and applies to libraries already loaded: call this in each
    thread that predicts, once the models are loaded."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # no scikit-learn: nothing uses OpenMP
        return
    threadpool_limits(limits=1)


class ServingApp:
    """The state behind the routes: what is served, the prediction log, the metrics."""

    def __init__(self, project: Workspace, log: PredictionLog | None = None) -> None:
        self.project = project
        self.spec = project.spec.serving
        self.metrics = ServingMetrics()
        if project.spec.monitoring.prometheus:
            from keel.monitoring.prometheus import MonitoringCollector

            self.metrics.include(MonitoringCollector(project))
        self.state = ServingState(project, self.spec, self.metrics)
        self.log = log if log is not None else NullPredictionLog()
        self._log_gauges: PredictionLogGauges | None = None
        if self.metrics.multiprocess_dir is None:
            self.metrics.include(PredictionLogCollector(self.log))
        else:
            self._log_gauges = PredictionLogGauges(self.log, self.metrics.registry)
        self._shadow_pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="keel-shadow", initializer=_single_threaded_math
        )
        # One thread predicts small requests, gathered per version (serving.batching): the
        # model's calls are GIL-bound, so more threads would only take turns.
        self._model_pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="keel-model", initializer=_single_threaded_math
        )
        self._batchers: weakref.WeakKeyDictionary[ServedVersion, Batcher] = (
            weakref.WeakKeyDictionary()
        )
        self._shadow_slots = threading.BoundedSemaphore(_SHADOW_QUEUE)
        self._stopping = threading.Event()
        self._compactor: threading.Thread | None = None
        self.started = False
        self._in_flight = 0  # prediction requests being answered (on the event loop)
        self._bounds_logged: dict[str, float] = {}  # version -> when last logged (monotonic)
        #: Where the app's services listen once started, by protocol ("grpc": "host:port").
        self.listening: dict[str, str] = {}
        #: Seconds the lifespan's shutdown may take (None: serving.shutdown_timeout); `keel
        #: serve` sets it to what the timeout leaves after draining requests.
        self.stop_budget: float | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.project.metadata  # noqa: B018 - open the store in this thread, once
        _single_threaded_math()
        self.state.start()
        if not isinstance(self.log, NullPredictionLog):
            self._compactor = threading.Thread(
                target=self._compact_periodically, name="keel-compact", daemon=True
            )
            self._compactor.start()
        if self._log_gauges is not None:
            threading.Thread(
                target=self._refresh_log_gauges, name="keel-log-gauges", daemon=True
            ).start()
        self.started = True

    def _refresh_log_gauges(self) -> None:
        """Under --workers, each worker's log health goes to the shared series every second."""
        assert self._log_gauges is not None
        while not self._stopping.wait(1.0):
            self.metrics.log_buffered.set(self.log.buffered)
            self._log_gauges.refresh()

    def _compact_periodically(self) -> None:
        """Move logged predictions older than an hour into Parquet segments, every few
        minutes, so windows read fast (`keel predictions compact` does the same by hand)."""
        from keel.predlog.read import compact

        while not self._stopping.wait(_COMPACT_EVERY_S):
            try:
                report = compact(self.project, exclusive=True)  # one replica at a time
                _log.info("compacted logged predictions: %s", report)
            except Exception:  # noqa: BLE001 - retried next time; rows stay in the table
                _log.warning("could not compact the prediction log", exc_info=True)

    def stop(self, timeout: float | None = None) -> None:
        """Stop the background work and close the prediction log within `timeout` seconds
        (None: `serving.shutdown_timeout`): what the store has not taken by then goes to
        the spool, so an outage cannot hold a stopping server past its grace period."""
        budget = self.spec.shutdown_timeout.total_seconds() if timeout is None else timeout
        deadline = time.monotonic() + budget

        def left(share: float = 1.0) -> float:
            return max(0.0, (deadline - time.monotonic()) * share)

        self._stopping.set()
        if self._compactor is not None:
            self._compactor.join(timeout=left(0.2))
        self.state.stop(timeout=left(0.2))
        # Shadow scorings still queued are dropped: they are never answered to anyone.
        self._shadow_pool.shutdown(wait=False, cancel_futures=True)
        self._model_pool.shutdown(wait=False, cancel_futures=True)
        # Keep a margin for spilling to the spool and exiting.
        self.log.close(timeout=max(left() - _SPILL_MARGIN_S, 0.1))

    # --- helpers --------------------------------------------------------------------------

    async def _body(self, request: Request) -> bytes:
        limit = self.spec.max_request_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not (declared.isascii() and declared.isdigit()):
                raise BadRequest(400, "Content-Length is not a number")
            if int(declared) > limit:
                raise BadRequest(
                    413,
                    f"the request body is {int(declared):,} bytes; the limit is {limit:,} "
                    "(serving.max_request_bytes)",
                    [Problem("body", f"at most {limit:,} bytes", f"{int(declared):,} bytes")],
                )
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BadRequest(
                    413,
                    f"the request body exceeds {limit:,} bytes (serving.max_request_bytes)",
                    [Problem("body", f"at most {limit:,} bytes", "larger")],
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _route_of(self, name: str) -> ModelRoute:
        route = self.state.route(name) if is_model_name(name) else None
        if route is None:
            served = ", ".join(sorted(self.state.routes)) or "none"
            rule = "a served model" if is_model_name(name) else f"a model name: {MODEL_NAME_RULE}"
            raise BadRequest(
                404,
                f"model {name!r} is not served (served: {served}); a model is served once a "
                "version holds its production alias",
                [Problem("name", rule, f"got {name!r}"[:100])],
            )
        return route

    def _version_of(self, route: ModelRoute, version: str | None) -> tuple[ServedVersion, str]:
        if version is None:
            return route.pick()
        served = route.served()
        number = parse_version_number(version)
        if number is None or number not in served:
            listed = ", ".join(f"v{v}" for v in sorted(served))
            rule = f"one of {listed}" if number is not None else VERSION_RULE
            raise BadRequest(
                404,
                f"{route.model} version {version} is not served (served: {listed})",
                [Problem("version", rule, f"got {version!r}"[:100])],
            )
        chosen = served[number]
        if route.production is chosen:
            return chosen, "production"
        if route.canary is chosen:
            return chosen, "canary"
        return chosen, "pinned"

    def _default_model(self) -> str:
        routes = self.state.routes
        if self.project.spec.name in routes:
            return self.project.spec.name
        if len(routes) == 1:
            return next(iter(routes))
        served = ", ".join(sorted(routes)) or "none"
        raise BadRequest(404, f"name the model: POST /models/NAME/predict (served: {served})")

    def _check_bounds(self, served: ServedVersion, batch: Batch) -> None:
        """Hold the batch to the ranges and domains its version was registered with, as
        `serving.input_contract` says: refuse it (422), or answer it and count and log what
        was outside."""
        problems = bound_problems(served.contract, batch)
        if not problems:
            return
        mode = self.spec.input_contract
        version = str(served.version)
        for problem in problems:
            self.metrics.input_contract.labels(served.model, version, problem.field, mode).inc()
        first = problems[0]
        where = f"{first.field} (record {first.record}): {first.rule}: {first.detail}"
        more = f"; and {len(problems) - 1} more" if len(problems) > 1 else ""
        if mode == "enforce":
            raise BadRequest(
                422,
                f"{where}{more}; {served.ref} was not trained on such values "
                "(serving.input_contract: enforce)",
                problems,
                {"model": served.model, "version": served.version},
            )
        # One line a minute per version: under `warn`, drifting traffic may be most of it
        # (the counter has every value).
        now = time.monotonic()
        if now - self._bounds_logged.get(served.ref, -_BOUNDS_LOG_EVERY_S) >= _BOUNDS_LOG_EVERY_S:
            self._bounds_logged[served.ref] = now
            _log.warning(
                "%s answered a request outside its input contract: %s%s "
                "(next such line in a minute at the earliest; "
                "keel_input_contract_violations_total counts them all)",
                served.ref,
                where,
                more,
            )

    def _batcher(self, served: ServedVersion) -> Batcher:
        batcher = self._batchers.get(served)
        if batcher is None:
            settings = self.spec.batching
            labels = (served.model, str(served.version))
            requests = self.metrics.batch_requests.labels(*labels)
            rows = self.metrics.batch_rows.labels(*labels)

            def observe(count: int, size: int) -> None:
                requests.observe(count)
                rows.observe(size)

            batcher = self._batchers[served] = Batcher(
                served.predict,
                self._model_pool,
                max_batch_size=settings.max_batch_size,
                max_delay_ms=settings.max_delay_ms,
                on_call=observe,
            )
        return batcher

    async def _predict(self, served: ServedVersion, batch: Batch) -> dict[str, list[Any]]:
        try:
            if batch.rows > _INLINE_ROWS:
                return await run_in_threadpool(served.predict, batch)
            # Alone, a request is predicted at once on the event loop's thread (a hop to the
            # model thread would only add latency); with others in flight, on the model
            # thread, gathered with those waiting for the same version.
            if self.spec.batching.enabled and self._in_flight > 1:
                return await self._batcher(served).predict(batch)
            return served.predict(batch)
        except Exception as exc:  # noqa: BLE001 - the model's own code failed on valid input
            raise _model_failure(served, exc) from None

    async def _log(self, batch: PredictionBatch) -> None:
        """Hand the rows to the prediction log without blocking the event loop.

        A prediction is answered only once it is in the log's buffer: if the log cannot take
        it for `_LOG_WAIT_S` (its store has been failing and the buffer is full), the request
        gets 503 rather than an answer whose lineage would be lost."""
        if not self.log.blocks:  # an append to memory: cheaper than a thread hop
            try:
                self.log.submit(batch, timeout=0)
                return
            except StoreError:
                pass
        try:
            # Durable mode waits for the spool's fsync, shared with concurrent requests.
            await run_in_threadpool(self.log.submit, batch, _LOG_WAIT_S)
        except StoreError as exc:
            raise BadRequest(
                error_code(exc).http_status,
                f"the prediction log cannot take more predictions ({exc.message}); retry shortly",
                [Problem("prediction_log", "has room", "full")],
            ) from None

    def _record(
        self,
        route: ModelRoute,
        served: ServedVersion,
        slot: str,
        batch: Batch,
        ids: list[str],
        outputs: dict[str, list[Any]],
        at: datetime,
        seconds: float,
        protocol: str,
    ) -> None:
        version = str(served.version)
        self.metrics.requests.labels(route.model, version, slot, protocol).inc()
        self.metrics.rows.labels(route.model, version, slot).inc(batch.rows)
        self.metrics.latency.labels(route.model, version, slot).observe(seconds)
        self.state.remember(route.model, batch)
        for shadow in route.shadows.values():
            if shadow is served:
                continue
            if not self._shadow_slots.acquire(blocking=False):
                self.metrics.shadow_dropped.labels(route.model).inc()
                continue
            self._shadow_pool.submit(self._shadow, route.model, shadow, batch, ids, at)

    def _shadow(
        self, model: str, shadow: ServedVersion, batch: Batch, ids: list[str], at: datetime
    ) -> None:
        try:
            started = time.perf_counter()
            outputs = shadow.predict(batch)
            self.log.submit(
                PredictionBatch(
                    ids=[new_prediction_id() for _ in ids],
                    at=at,
                    model=model,
                    version=shadow.version,
                    slot="shadow",
                    inputs=batch.columns,
                    outputs=outputs,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    client_id=batch.client_id,
                    shadow_of=ids,
                )
            )
            self.metrics.rows.labels(model, str(shadow.version), "shadow").inc(batch.rows)
        except Exception:  # noqa: BLE001 - a shadow never affects callers
            _log.warning("shadow %s failed", shadow.ref, exc_info=True)
        finally:
            self._shadow_slots.release()

    async def score(
        self,
        model: str | None,
        version: str | None,
        protocol: str,
        decode: Callable[[ServedVersion], Awaitable[Batch]],
    ) -> Scored:
        """One prediction request, whatever its protocol: the version that answers it (the
        named one, or production or canary by the configured share), its rows as `decode`
        reads them for that version, held to the input contract, predicted (gathered with
        concurrent requests for the same version), logged with their ids and counted.

        A refused request raises `BadRequest`, counted by status and rule. While it is
        answered, the request is counted in flight: a request alone is predicted without
        the batcher (`_predict`)."""
        self._in_flight += 1
        started = time.perf_counter()
        at = datetime.now(UTC)
        name = model or "?"
        try:
            name = model or self._default_model()
            route = self._route_of(name)
            served, slot = self._version_of(route, version)
            batch = await decode(served)
            self._check_bounds(served, batch)
            outputs = await self._predict(served, batch)
            ids = [new_prediction_id() for _ in range(batch.rows)]
            seconds = time.perf_counter() - started
            await self._log(
                PredictionBatch(
                    ids=ids,
                    at=at,
                    model=route.model,
                    version=served.version,
                    slot=slot,  # type: ignore[arg-type]
                    inputs=batch.columns,
                    outputs=outputs,
                    latency_ms=seconds * 1000,
                    client_id=batch.client_id,
                )
            )
            self._record(route, served, slot, batch, ids, outputs, at, seconds, protocol)
            return Scored(route.model, served, slot, batch, ids, outputs)
        except BadRequest as exc:
            rule = exc.problems[0].rule if exc.problems else str(exc.status)
            self.metrics.errors.labels(name, str(exc.status), rule).inc()
            raise
        finally:
            self._in_flight -= 1

    async def _answer(
        self, request: Request, model: str | None, version: str | None, protocol: str
    ) -> Response:
        """An HTTP prediction request's response: OIP v2 (`protocol` "oip", binary tensors
        included) or records (`/predict`)."""
        document: Any = None

        async def decode(served: ServedVersion) -> Batch:
            nonlocal document
            try:
                body, blob = await self._body(request), b""
            except ClientDisconnect:
                raise BadRequest(
                    499, "client disconnected", [Problem("client", "client disconnected", "")]
                ) from None
            if protocol == "oip":
                body, blob = split_body(body, request.headers.get(BINARY_HEADER))
            try:
                document = parse_json(body)
            except BadRequest as exc:
                headless = protocol == "oip" and BINARY_HEADER not in request.headers
                missing = BINARY_HEADER.title() if headless else None
                kind = request.headers.get("content-type", "")
                raise unparsable(exc, body, kind, missing_header=missing) from None
            if protocol == "oip":
                document = decode_binary_inputs(document, blob)
                return decode_oip(document, served.contract, max_rows=self.spec.max_rows)
            return decode_records(document, served.contract, max_rows=self.spec.max_rows)

        try:
            scored = await self.score(model, version, protocol, decode)
        except BadRequest as exc:
            if exc.status == 499:
                return Response(status_code=499)
            return _error(exc.status, exc.message, exc.problems, exc.details)
        if protocol == "oip":
            response = scored.oip()
            binary = encode_binary_outputs(response, document)
            if binary is None:
                return _json(response)
            head = orjson.dumps(binary[0])
            return Response(
                head + binary[1],
                media_type="application/octet-stream",
                headers={BINARY_HEADER: str(len(head))},
            )
        outputs, names = scored.outputs, list(scored.outputs)
        predictions = [
            {"id": scored.ids[row], **{n: outputs[n][row] for n in names}}
            for row in range(scored.batch.rows)
        ]
        return _json(
            {
                "model": scored.model,
                "version": scored.served.version,
                "slot": scored.slot,
                "predictions": predictions,
            }
        )

    # --- what every protocol asks ---------------------------------------------------------

    async def readiness(self) -> dict[str, Any]:
        """Ready while every model is loaded and the prediction log can take rows. A store
        outage alone leaves the server ready: the spool carries the rows meanwhile."""
        routes = self.state.routes
        refusing = await self._log_refusing()
        ready = (
            self.started
            and bool(routes)
            and all(r.ready for r in routes.values())
            and refusing is None
        )
        return {
            "ready": ready,
            "models": {name: r.describe() for name, r in sorted(routes.items())},
            # Names only: this endpoint is unauthenticated; the details are in the server's
            # log, on /metrics and in the audit log (`serving.load_failed`).
            "load_failures": self.state.failed_versions,
            "prediction_log": "accepting" if refusing is None else "refusing",
        }

    def model_metadata_document(self, name: str, version: str | None) -> dict[str, Any]:
        """A served model's OIP metadata (its production version's, or the named
        version's); `BadRequest` (404) if it is not served."""
        route = self._route_of(name)
        if version is not None:
            served, _ = self._version_of(route, version)
        else:
            assert route.production is not None
            served = route.production
        contract = served.contract
        return {
            "name": route.model,
            "versions": [str(v) for v in sorted(route.served())],
            "platform": f"keel-{served.flavor}",
            "inputs": [
                {"name": f.name, "datatype": oip_datatype(f.type), "shape": [-1]}
                for f in contract.inputs
            ],
            "outputs": [
                {"name": f.name, "datatype": oip_datatype(f.type), "shape": [-1]}
                for f in contract.outputs
            ],
            "parameters": {"served": route.describe(), "version": str(served.version)},
        }

    async def model_is_ready(self, name: str, version: str | None) -> tuple[str, bool]:
        """The model's name and whether it (or the named version) answers requests;
        `BadRequest` (404) if it is not served."""
        route = self._route_of(name)
        if version is not None:
            self._version_of(route, version)
        refusing = await self._log_refusing()
        return route.model, route.ready and refusing is None

    async def _log_refusing(self) -> str | None:
        # Off the event loop: a spool that failed is probed with a write and an fsync.
        return await run_in_threadpool(lambda: self.log.refusing)

    # --- endpoints ------------------------------------------------------------------------

    async def infer(self, request: Request) -> Response:
        params = request.path_params
        return await self._answer(request, params["name"], params.get("version"), "oip")

    async def predict(self, request: Request) -> Response:
        return await self._answer(request, request.path_params.get("name"), None, "records")

    async def live(self, request: Request) -> Response:
        return _json({"live": True})

    async def ready(self, request: Request) -> Response:
        document = await self.readiness()
        return _json(document, 200 if document["ready"] else 503)

    async def server_metadata(self, request: Request) -> Response:
        return _json(SERVER_METADATA)

    async def model_metadata(self, request: Request) -> Response:
        params = request.path_params
        try:
            document = self.model_metadata_document(params["name"], params.get("version"))
        except BadRequest as exc:
            return _error(exc.status, exc.message, exc.problems)
        return _json(document)

    async def model_ready(self, request: Request) -> Response:
        params = request.path_params
        try:
            name, ready = await self.model_is_ready(params["name"], params.get("version"))
        except BadRequest as exc:
            document = {"name": params["name"], "ready": False, "error": exc.message}
            return _json(document | {"problems": [p.to_dict() for p in exc.problems]}, 404)
        return _json({"name": name, "ready": ready})

    async def prometheus(self, request: Request) -> Response:
        self.metrics.log_buffered.set(self.log.buffered)
        if self._log_gauges is not None:
            self._log_gauges.refresh()
        # The monitoring collector may read the store: off the event loop.
        body = await run_in_threadpool(self.metrics.render)
        return Response(body, media_type=CONTENT_TYPE)

    async def openapi(self, request: Request) -> Response:
        from keel.serving.openapi import openapi_document

        return _json(openapi_document(self.state.routes, self.spec))

    async def feedback(self, request: Request) -> Response:
        """Delayed labels, `{"feedback": [{"prediction_id", "label"}, ...]}` (see
        `keel.monitoring.feedback.receive`), from the user of an API token whose roles may
        `label`. Labels drive performance alerts, retraining and canary verdicts, so unlike
        /predict this is a write, checked as `POST /api/v1/feedback` checks it
        (`keel.serving.auth`): JSON only (415), a token (401), a role that may label (403)."""
        from keel.domain.identity import require
        from keel.errors import ConfigError, KeelError
        from keel.monitoring.feedback import receive
        from keel.serving.auth import Refusal, authenticate, require_json

        try:
            require_json(request)
            actor = await authenticate(self.project, request)
            require(actor, "label")
            document = parse_json(await self._body(request))
            host = request.client.host if request.client is not None else "unknown"
            result = await run_in_threadpool(
                lambda: receive(
                    self.project,
                    document,
                    actor=actor.name,
                    max_rows=self.spec.max_rows,
                    via=f"POST /v1/feedback from {host}",
                )
            )
        except Refusal as refusal:
            response = _error(refusal.status, refusal.message)
            response.headers.update(refusal.headers)
            return response
        except BadRequest as exc:
            return _error(exc.status, exc.message, exc.problems)
        except ClientDisconnect:
            return Response(status_code=499)
        except KeelError as exc:
            pairs = exc.problems if isinstance(exc, ConfigError) else []
            problems = [Problem(f, rule, "") for f, rule in pairs]
            return _error(error_code(exc).http_status, exc.message, problems)
        return _json({"ok": True, **result.to_dict()})


#: A service run alongside the HTTP routes for the app's lifetime, on its event loop (the
#: gRPC endpoint, `keel.serving.grpc`): entered once the models are loaded, left before the
#: prediction log closes.
Service = Callable[["ServingApp"], AbstractAsyncContextManager[None]]


def create_app(
    project: Workspace,
    *,
    log: PredictionLog | None = None,
    mounts: Sequence[BaseRoute] = (),
    services: Sequence[Service] = (),
) -> tuple[Starlette, ServingApp]:
    """The serving app and its state object; the lifespan starts and stops both, and runs
    `services` in between. `mounts` are served after the inference routes, under the same
    error handlers and body deadline (`keel.server.create_app` mounts the registry API and
    the web UI this way)."""
    serving = ServingApp(project, log)
    endpoint = Callable[[Request], Awaitable[Response]]
    routes: list[BaseRoute] = []

    def add(path: str, handler: endpoint, methods: list[str]) -> None:
        routes.append(Route(path, handler, methods=methods))

    add("/v2", serving.server_metadata, ["GET"])
    add("/v2/health/live", serving.live, ["GET"])
    add("/v2/health/ready", serving.ready, ["GET"])
    add("/v2/models/{name}", serving.model_metadata, ["GET"])
    add("/v2/models/{name}/ready", serving.model_ready, ["GET"])
    add("/v2/models/{name}/infer", serving.infer, ["POST"])
    add("/v2/models/{name}/versions/{version}", serving.model_metadata, ["GET"])
    add("/v2/models/{name}/versions/{version}/ready", serving.model_ready, ["GET"])
    add("/v2/models/{name}/versions/{version}/infer", serving.infer, ["POST"])
    add("/predict", serving.predict, ["POST"])
    add("/models/{name}/predict", serving.predict, ["POST"])
    add("/metrics", serving.prometheus, ["GET"])
    add("/openapi.json", serving.openapi, ["GET"])
    add("/v1/feedback", serving.feedback, ["POST"])
    routes.extend(mounts)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()

        async def stop() -> None:
            await loop.run_in_executor(None, serving.stop, serving.stop_budget)

        async with AsyncExitStack() as stack:
            await loop.run_in_executor(None, serving.start)
            stack.push_async_callback(stop)
            _single_threaded_math()  # small requests are predicted on the event loop's thread
            for service in services:
                await stack.enter_async_context(service(serving))
            yield

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        response = _error(exc.status_code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def internal_error(request: Request, exc: Exception) -> Response:
        # The last line of defence: JSON like every other answer, and no traceback to the
        # client (Starlette re-raises the exception after this, so the server logs it once).
        return _error(500, "internal error: the server could not answer this request")

    handlers = {HTTPException: http_error, Exception: internal_error}
    # Half-sent bodies must not hold connections (and their requests) open.
    deadline = Middleware(BodyDeadline, seconds=project.spec.serving.body_timeout.total_seconds())
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers=handlers, middleware=[deadline]
    )
    return app, serving
