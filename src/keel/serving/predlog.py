"""The prediction log: every prediction with its id, time, model version, slot, inputs and
outputs, written off the request path.

The serving app hands each answered request to `PredictionLog.submit` (it only enqueues);
a writer thread makes batches durable every `serving.log.flush_interval`, which is the most
a hard crash can lose. `flush` waits until everything submitted so far is durable, and
`close` flushes and stops the writer (graceful shutdown).

`StoredPredictionLog` is the implementation: rows go to the metadata store's `predictions`
table, one multi-row INSERT per commit (durable at commit: SQLite WAL with
`synchronous=FULL`, or PostgreSQL). The crash window: a row acknowledged (submit returned)
at time t is durable by t + flush_interval + the time of the commit it is written in (and
of one still in progress), as long as the store answers; `keel predictions compact` later
moves closed time ranges into Parquet segments (keel.serving.predictions).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from keel.domain.prediction import LoggedPrediction
from keel.errors import StoreError

if TYPE_CHECKING:
    from keel.metadata.base import Predictions
    from keel.project import Project

__all__ = [
    "NullPredictionLog",
    "PredictionBatch",
    "PredictionLog",
    "Slot",
    "StoredPredictionLog",
    "open_prediction_log",
]

_log = logging.getLogger(__name__)

#: Rows per transaction: big enough to amortise a commit's fsync, small enough that one
#: commit takes tens of milliseconds and releases buffer space as it goes.
COMMIT_ROWS: Final = 10_000
#: After a failed write the writer retries after 0.1 s, doubling up to this (seconds).
MAX_BACKOFF: Final = 5.0
#: How long an exiting interpreter waits for a log nobody closed to flush (seconds).
EXIT_FLUSH_TIMEOUT: Final = 30.0

Slot = Literal["production", "canary", "shadow", "pinned", "batch"]


@dataclass(frozen=True, slots=True)
class PredictionBatch:
    """The rows of one answered request (or one shadow scoring of it): one id per row."""

    ids: Sequence[str]
    at: datetime  # when the request arrived (UTC)
    model: str
    version: int
    slot: Slot
    inputs: Mapping[str, Sequence[Any]]  # columns of JSON values, as validated
    outputs: Mapping[str, Sequence[Any]]  # columns of JSON values, as returned
    latency_ms: float
    client_id: str | None = None  # the id the client sent, if any
    shadow_of: Sequence[str] | None = None  # for shadow rows: the ids of the answered rows

    @property
    def rows(self) -> int:
        return len(self.ids)


class PredictionLog(ABC):
    """Where served predictions go."""

    @abstractmethod
    def submit(self, batch: PredictionBatch, timeout: float | None = None) -> None:
        """Enqueue a batch; returns at once unless the buffer is full (back-pressure).

        With `timeout`, waits at most that many seconds for room (`StoreError` then)."""

    @abstractmethod
    def flush(self, timeout: float | None = None) -> None:
        """Block until everything submitted before the call is durable."""

    @abstractmethod
    def close(self, timeout: float | None = None) -> None:
        """Flush and stop; later submits raise. With `timeout`, gives up flushing after
        that many seconds (`StoreError` saying what was not written)."""

    @property
    @abstractmethod
    def buffered(self) -> int:
        """Rows submitted and not yet durable."""


class NullPredictionLog(PredictionLog):
    """Logging switched off (`serving.log.enabled: false`)."""

    def submit(self, batch: PredictionBatch, timeout: float | None = None) -> None:
        return None

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self, timeout: float | None = None) -> None:
        return None

    @property
    def buffered(self) -> int:
        return 0


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _check(batch: PredictionBatch) -> None:
    """A malformed batch is a bug in the caller: refuse it now, not in the writer thread."""
    rows = len(batch.ids)
    for kind, columns in (("input", batch.inputs), ("output", batch.outputs)):
        for name, values in columns.items():
            if len(values) != rows:
                raise ValueError(
                    f"prediction batch: {kind} {name!r} has {len(values)} values for {rows} ids"
                )
    if batch.shadow_of is not None and len(batch.shadow_of) != rows:
        raise ValueError(
            f"prediction batch: shadow_of has {len(batch.shadow_of)} ids for {rows} rows"
        )
    if batch.at.tzinfo is None:
        raise ValueError(f"prediction batch: `at` must be timezone-aware, got {batch.at!r}")


def _logged(batch: PredictionBatch) -> list[LoggedPrediction]:
    """One `LoggedPrediction` per row of a columnar batch."""
    shadow_of: Sequence[str | None] = batch.shadow_of or [None] * batch.rows
    return [
        LoggedPrediction(
            id=prediction_id,
            at=batch.at,
            model=batch.model,
            version=batch.version,
            slot=batch.slot,
            inputs=inputs,
            outputs=outputs,
            latency_ms=batch.latency_ms,
            client_id=batch.client_id,
            shadow_of=shadow,
        )
        for prediction_id, inputs, outputs, shadow in zip(
            batch.ids,
            _records(batch.inputs, batch.rows),
            _records(batch.outputs, batch.rows),
            shadow_of,
            strict=True,
        )
    ]


def _records(columns: Mapping[str, Sequence[Any]], rows: int) -> list[dict[str, Any]]:
    """Columns as one dict per row (the writer thread's main cost per row: kept lean)."""
    items = list(columns.items())
    return [{name: values[row] for name, values in items} for row in range(rows)]


class StoredPredictionLog(PredictionLog):
    """The prediction log written to the metadata store by a background writer thread.

    `submit` only appends the batch to a buffer (no I/O, no serialisation on the request
    path). Every `flush_interval` the writer takes what is buffered and writes it, at most
    `COMMIT_ROWS` rows per transaction; it starts early when that many rows wait or when
    someone flushes. When `max_buffer` rows are waiting, `submit` blocks until the writer
    has made room (back-pressure): nothing is ever dropped. A failed write is logged and
    retried with backoff, the rows staying in the buffer meanwhile; the writer never dies
    of a store error.

    A log nobody closed is closed (flushed) when the interpreter exits normally; a hard
    crash loses what was acknowledged within the last flush_interval plus a commit.
    """

    def __init__(
        self,
        store: Predictions,
        *,
        flush_interval: float | timedelta = 0.2,
        max_buffer: int = 100_000,
        commit_rows: int = COMMIT_ROWS,
    ) -> None:
        interval = _seconds(flush_interval)
        if interval <= 0:
            raise ValueError(f"flush_interval must be positive, got {flush_interval!r}")
        if max_buffer < 1 or commit_rows < 1:
            raise ValueError("max_buffer and commit_rows must be at least 1")
        self._store = store
        self._interval = interval
        self._max_buffer = max_buffer
        self._commit_rows = commit_rows
        self._cond = threading.Condition()
        self._pending: list[tuple[int, PredictionBatch]] = []  # (sequence number, batch)
        self._pending_rows = 0  # submitted, not yet taken by the writer
        self._writing_rows = 0  # taken, not yet committed
        self._submitted = 0  # sequence number of the newest batch submitted
        self._durable = 0  # every batch up to this sequence number is committed
        self._written = 0
        self._failures = 0
        self._last_error: str | None = None
        self._flush_wanted = False
        self._closed = False
        self._abandoned = False  # close timed out: the writer stops without writing
        self._thread = threading.Thread(target=self._run, name="keel-prediction-log", daemon=True)
        self._thread.start()
        self._at_exit = functools.partial(_close_at_exit, weakref.ref(self))
        atexit.register(self._at_exit)

    # --- the request path -----------------------------------------------------------------

    def submit(self, batch: PredictionBatch, timeout: float | None = None) -> None:
        """Enqueue a batch. Blocks while the buffer is full; `StoreError` if `timeout`
        seconds pass first (the store has been failing: nothing is dropped, the caller
        decides), or if the log is closed."""
        _check(batch)
        rows = batch.rows
        if rows == 0:
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._closed:
                    raise StoreError("the prediction log is closed: no more predictions")
                buffered = self._pending_rows + self._writing_rows
                # A batch larger than the whole buffer still goes in once the buffer is empty.
                if buffered == 0 or buffered + rows <= self._max_buffer:
                    break
                self._flush_wanted = True
                self._cond.notify_all()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise StoreError(
                        f"the prediction log is full ({buffered:,} rows waiting for the "
                        f"store, serving.log.max_buffer {self._max_buffer:,})"
                        + (f": {self._last_error}" if self._last_error else ""),
                        hint="check that the metadata store is reachable (`keel status`)",
                    )
                self._cond.wait(remaining)
            self._submitted += 1
            self._pending.append((self._submitted, batch))
            self._pending_rows += rows
            if self._pending_rows >= self._commit_rows:
                self._cond.notify_all()

    # --- waiting for durability -----------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Block until every batch submitted before the call is committed; `StoreError`
        (naming the last store error) if `timeout` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._submitted
            self._flush_wanted = True
            self._cond.notify_all()
            while self._durable < target:
                if not self._thread.is_alive():
                    raise StoreError(
                        f"the prediction log's writer has stopped with {self.buffered:,} rows "
                        "not written" + (f": {self._last_error}" if self._last_error else "")
                    )
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise StoreError(
                        f"the prediction log could not write {self.buffered:,} rows within "
                        f"{timeout:g} s" + (f": {self._last_error}" if self._last_error else ""),
                        hint="check that the metadata store is reachable (`keel status`)",
                    )
                self._cond.wait(remaining if remaining is not None else 1.0)

    def close(self, timeout: float | None = None) -> None:
        """Flush and stop the writer; later submits raise. Idempotent.

        With `timeout`, gives up after that many seconds: `StoreError` says how many rows
        were not written (the writer stops; they are lost, and the message says so).
        """
        with self._cond:
            already = self._closed
            self._closed = True
            self._cond.notify_all()
        atexit.unregister(self._at_exit)
        if already and not self._thread.is_alive():
            return
        try:
            self.flush(timeout)
        except StoreError:
            with self._cond:
                self._abandoned = True
                lost = self.buffered
                self._cond.notify_all()
            _log.error("prediction log closed with %d rows not written", lost)
            raise
        finally:
            self._thread.join(timeout=5.0)

    def __enter__(self) -> StoredPredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- state ----------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        return self._pending_rows + self._writing_rows

    @property
    def written(self) -> int:
        """Rows committed since the log was opened."""
        return self._written

    @property
    def failures(self) -> int:
        """Failed write attempts since the log was opened (each one retried)."""
        return self._failures

    @property
    def last_error(self) -> str | None:
        """The last store error, until a write succeeds again."""
        return self._last_error

    # --- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.0
        last_take = time.monotonic()
        while True:
            with self._cond:
                due = last_take + (backoff or self._interval)
                while True:
                    if self._abandoned:
                        return
                    now = time.monotonic()
                    if self._pending:
                        early = not backoff and (
                            self._flush_wanted
                            or self._closed
                            or self._pending_rows >= self._commit_rows
                        )
                        if early or now >= due:
                            break
                    elif self._closed:
                        return
                    elif now >= due:
                        due = now + self._interval  # nothing came: a new interval starts
                    self._cond.wait(due - now if due > now else self._interval)
                taken = self._pending
                self._pending = []
                self._flush_wanted = False
                taken_rows = self._pending_rows
                self._pending_rows = 0
                self._writing_rows += taken_rows
            last_take = time.monotonic()
            written = self._write(taken)
            backoff = 0.0 if written else min(max(backoff * 2, 0.1), MAX_BACKOFF)

    def _write(self, taken: list[tuple[int, PredictionBatch]]) -> bool:
        """Commit the taken batches in chunks; on failure put the rest back, in order."""
        start = 0
        while start < len(taken):
            end, rows = start, 0
            while end < len(taken) and (
                end == start or rows + taken[end][1].rows <= self._commit_rows
            ):
                rows += taken[end][1].rows
                end += 1
            try:
                self._store.add([row for _, batch in taken[start:end] for row in _logged(batch)])
            except Exception as exc:  # noqa: BLE001 - the writer must outlive any store error
                rest = taken[start:]
                rest_rows = sum(batch.rows for _, batch in rest)
                with self._cond:
                    self._pending[:0] = rest
                    self._pending_rows += rest_rows
                    self._writing_rows -= rest_rows
                    self._failures += 1
                    self._last_error = f"{type(exc).__name__}: {exc}"
                    self._cond.notify_all()
                _log.warning(
                    "prediction log: writing %d rows failed (%s); %d rows kept, retrying",
                    rows,
                    self._last_error,
                    self.buffered,
                )
                return False
            with self._cond:
                self._durable = taken[end - 1][0]
                self._writing_rows -= rows
                self._written += rows
                self._last_error = None
                self._cond.notify_all()
            start = end
        return True


def _close_at_exit(ref: weakref.ReferenceType[StoredPredictionLog]) -> None:
    log = ref()
    if log is None:
        return
    with contextlib.suppress(StoreError):  # close has logged how many rows were not written
        log.close(timeout=EXIT_FLUSH_TIMEOUT)


def open_prediction_log(project: Project) -> PredictionLog:
    """The project's prediction log as keel.yaml's `serving.log` configures it."""
    spec = project.spec.serving.log
    if not spec.enabled:
        return NullPredictionLog()
    return StoredPredictionLog(
        project.metadata.predictions,
        flush_interval=spec.flush_interval,
        max_buffer=spec.max_buffer,
    )
