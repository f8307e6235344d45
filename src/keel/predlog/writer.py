"""`StoredPredictionLog`: the prediction log written to the metadata store by a writer
thread, with the spool and the dead-letter file behind it (the package docstring tells the
whole story); `open_prediction_log` opens it as keel.yaml's `serving.log` configures it.

Somewhat over 600 lines, kept whole on purpose: the request path, the writer thread, replay
and spilling all share one lock and one set of counters, and reading them apart would hide
how each keeps the others' invariants."""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from keel.domain.prediction import LoggedPrediction
from keel.errors import StoreError, StoreRefused
from keel.predlog.deadletter import set_aside
from keel.predlog.log import (
    DeadLettered,
    NullPredictionLog,
    PredictionBatch,
    PredictionLog,
    check_batch,
    logged_predictions,
)
from keel.predlog.spool import Spool, decode_batch, encode_batch, read_records

if TYPE_CHECKING:
    from keel.metadata.base import Predictions
    from keel.workspace import Workspace

__all__ = ["COMMIT_ROWS", "StoredPredictionLog", "open_prediction_log", "spool_dir"]

_log = logging.getLogger(__name__)

#: Rows per transaction: big enough to amortise a commit's fsync, small enough that one
#: commit takes tens of milliseconds and releases buffer space as it goes.
COMMIT_ROWS: Final = 10_000
#: After a failed write the writer retries after 0.1 s, doubling up to this (seconds).
MAX_BACKOFF: Final = 5.0
#: How long an exiting interpreter waits for a log nobody closed to flush (seconds).
EXIT_FLUSH_TIMEOUT: Final = 30.0
#: How often the writer looks for spools left by processes that died (seconds).
REPLAY_EVERY: Final = 60.0
#: While the store stays unreachable, one summary line this often (seconds).
SUMMARY_EVERY: Final = 60.0
#: How often readiness retries a spool that failed to write (seconds).
PROBE_EVERY: Final = 1.0


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class StoredPredictionLog(PredictionLog):
    """The prediction log written to the metadata store by a background writer thread.

    `submit` appends the batch to a buffer in memory; in durable mode it also appends it to
    the spool and returns once the spool is fsynced (group commit). Every `flush_interval`
    the writer takes what is buffered and writes it, at most `COMMIT_ROWS` rows per
    transaction; it starts early when that many rows wait or when someone flushes.

    Failures of two kinds:
    - the store is down (`StoreError`): the rows move to the spool (or stay in memory if
      there is none) and the writer retries with backoff; when `max_buffer` rows are in
      memory, further batches go straight to the spool. One log line says the store is
      unreachable, one summary a minute while it stays so, one line when it is back.
    - the store refuses some rows' content (`StoreRefused`, or any other error): the batch
      is split in halves until the refused rows are alone; they go to the dead-letter file
      (JSON lines) with the error, the rest are written, and `on_dead_letter` is told.
    Without a spool, a full buffer makes `submit` wait (back-pressure), as before.

    A log nobody closed is closed (flushed) when the interpreter exits normally.
    """

    def __init__(
        self,
        store: Predictions,
        *,
        flush_interval: float | timedelta = 0.2,
        max_buffer: int = 100_000,
        commit_rows: int = COMMIT_ROWS,
        spool: Spool | None = None,
        durable: bool = False,
        dead_letter: Path | None = None,
        on_dead_letter: Callable[[DeadLettered], None] | None = None,
        replay_every: float = REPLAY_EVERY,
    ) -> None:
        interval = _seconds(flush_interval)
        if interval <= 0:
            raise ValueError(f"flush_interval must be positive, got {flush_interval!r}")
        if max_buffer < 1 or commit_rows < 1:
            raise ValueError("max_buffer and commit_rows must be at least 1")
        if durable and spool is None:
            raise ValueError("a durable prediction log needs a spool")
        self._store = store
        self._interval = interval
        self._max_buffer = max_buffer
        self._commit_rows = commit_rows
        self._spool = spool
        self._durable_mode = durable
        self._dead_letter_dir = dead_letter
        self.on_dead_letter = on_dead_letter
        self._replay_every = replay_every
        self._cond = threading.Condition()
        self._pending: list[tuple[int, PredictionBatch]] = []  # (sequence number, batch)
        self._writing: list[tuple[int, PredictionBatch]] = []  # taken by the writer
        self._pending_rows = 0  # submitted, not yet taken by the writer
        self._writing_rows = 0  # taken, not yet committed
        self._submitted = 0  # sequence number of the newest batch submitted
        self._durable = 0  # every batch up to this sequence number is committed
        self._written = 0
        self._failures = 0
        self._dead_lettered = 0
        self._last_error: str | None = None
        self._down_since: float | None = None  # monotonic time the store became unreachable
        self._down_failures = 0
        self._carried = 0  # rows moved to the spool during the current outage
        self._last_summary = 0.0
        self._last_probe = 0.0
        self._flush_wanted = False
        self._closed = False
        self._abandoned = False  # close timed out: the writer stops without writing
        self._thread = threading.Thread(target=self._run, name="keel-prediction-log", daemon=True)
        self._thread.start()
        self._at_exit = functools.partial(_close_at_exit, weakref.ref(self))
        atexit.register(self._at_exit)

    # --- the request path -----------------------------------------------------------------

    def submit(self, batch: PredictionBatch, timeout: float | None = None) -> None:
        """Enqueue a batch (durable mode: and wait until it is on the spool, fsynced).

        With a spool, a full buffer sends the batch to the spool; without one, `submit`
        blocks while the buffer is full, `StoreError` if `timeout` seconds pass first.
        `StoreError` also if the log is closed or the spool cannot be written."""
        check_batch(batch)
        rows = batch.rows
        if rows == 0:
            return
        spool = self._spool
        payload = encode_batch(batch) if self._durable_mode else None
        deadline = None if timeout is None else time.monotonic() + timeout
        end: int | None = None
        with self._cond:
            while True:
                if self._closed:
                    raise StoreError("the prediction log is closed: no more predictions")
                buffered = self._pending_rows + self._writing_rows
                # A batch larger than the whole buffer still goes in once the buffer is empty.
                if buffered == 0 or buffered + rows <= self._max_buffer:
                    seq = self._submitted + 1
                    if spool is not None and payload is not None:
                        end = spool.append(payload, seq=seq, rows=rows, disk_only=False)
                    self._submitted = seq
                    self._pending.append((seq, batch))
                    self._pending_rows += rows
                    if self._pending_rows >= self._commit_rows:
                        self._cond.notify_all()
                    break
                if spool is not None and (spool.error is None or self._durable_mode):
                    # Memory is full (the store is slow or down): the disk carries the rest.
                    self._submitted += 1
                    end = spool.append(
                        payload or encode_batch(batch),
                        seq=self._submitted,
                        rows=rows,
                        disk_only=True,
                    )
                    if self._down_since is not None:
                        self._carried += rows
                    self._cond.notify_all()
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
        if spool is not None and end is not None:
            spool.sync(end)

    @property
    def durable(self) -> bool:
        return self._durable_mode

    @property
    def blocks(self) -> bool:
        """Would `submit` wait for the disk or for room now?"""
        return self._durable_mode or self.buffered >= self._max_buffer

    @property
    def refusing(self) -> str | None:
        """Why the log cannot take rows now (None: it can). Readiness reports this."""
        if self._closed:
            return "the prediction log is closed"
        spool = self._spool
        full = self.buffered >= self._max_buffer
        if spool is not None and spool.error is not None:
            now = time.monotonic()
            if now - self._last_probe >= PROBE_EVERY:
                self._last_probe = now
                spool.probe()
            if spool.error is not None and (self._durable_mode or full):
                return f"the prediction spool cannot be written ({spool.error})"
        if spool is None and full:
            return f"the prediction log is full ({self.buffered:,} rows waiting for the store" + (
                f": {self._last_error})" if self._last_error else ")"
            )
        return None

    # --- waiting for durability -----------------------------------------------------------

    def _caught_up(self, target: int) -> bool:
        return self._durable >= target and (self._spool is None or self._spool.disk_rows == 0)

    def flush(self, timeout: float | None = None) -> None:
        """Block until every batch submitted before the call is committed to the store;
        `StoreError` (naming the last store error) if `timeout` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._submitted
            self._flush_wanted = True
            self._cond.notify_all()
            while not self._caught_up(target):
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
                self._cond.wait(min(remaining, 0.1) if remaining is not None else 0.1)

    def close(self, timeout: float | None = None) -> None:
        """Flush and stop the writer; later submits raise. Idempotent.

        With `timeout`, gives up after that many seconds: what the store did not take goes
        to the spool (the next start replays it), and the spool is closed. Without a spool,
        or if the spool cannot be written, `StoreError` says how many rows were lost.
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
                self._cond.notify_all()
            if not self._spill(everything=True):
                lost = self.buffered
                _log.error("prediction log closed with %d rows not written", lost)
                raise
            _log.warning(
                "prediction log: the store did not take every row within %.1f s; the rest "
                "(%d rows) is on the spool at %s and is written by the next start",
                timeout or 0.0,
                self._spool.disk_rows if self._spool is not None else 0,
                self._spool.folder if self._spool is not None else "?",
            )
        finally:
            self._thread.join(timeout=0.5 if self._abandoned else 5.0)
            if self._spool is not None:
                self._spool.close()

    def __enter__(self) -> StoredPredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- state ----------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        return self._pending_rows + self._writing_rows

    @property
    def spooled(self) -> int:
        """Rows only the spool holds, waiting to be replayed into the store."""
        return 0 if self._spool is None else self._spool.disk_rows

    @property
    def written(self) -> int:
        """Rows committed since the log was opened."""
        return self._written

    @property
    def failures(self) -> int:
        """Failed write attempts since the log was opened (each one retried)."""
        return self._failures

    @property
    def dead_lettered(self) -> int:
        """Rows the store refused, written to the dead-letter file instead."""
        return self._dead_lettered

    @property
    def store_down(self) -> bool:
        return self._down_since is not None

    @property
    def last_error(self) -> str | None:
        """The last store error, until a write succeeds again."""
        return self._last_error

    # --- the writer thread ----------------------------------------------------------------

    def _has_disk_work(self) -> bool:
        return self._spool is not None and self._spool.disk_rows > 0

    def _run(self) -> None:
        backoff = 0.0
        last_round = time.monotonic()
        next_dead_check = 0.0 if self._spool is not None else float("inf")
        while True:
            with self._cond:
                while True:
                    if self._abandoned:
                        return
                    now = time.monotonic()
                    due = last_round + (backoff or self._interval)
                    work = bool(self._pending) or self._has_disk_work()
                    if not work and self._closed:
                        return
                    work = work or now >= next_dead_check
                    early = (
                        not backoff
                        and bool(self._pending)
                        and (
                            self._flush_wanted
                            or self._closed
                            or self._pending_rows >= self._commit_rows
                        )
                    )
                    if work and (early or now >= due):
                        break
                    self._cond.wait(due - now if work and due > now else self._interval)
                taken = self._pending
                self._pending = []
                self._writing = taken
                self._flush_wanted = False
                taken_rows = self._pending_rows
                self._pending_rows = 0
                self._writing_rows += taken_rows
            last_round = time.monotonic()
            error = self._write(taken)
            if error is None and self._spool is not None:
                error = self._replay_own()
                if error is None and time.monotonic() >= next_dead_check and not self._closed:
                    error = self._replay_dead()
                    if error is None:
                        next_dead_check = time.monotonic() + self._replay_every
            if error is None:
                backoff = 0.0
                self._store_back()
            else:
                backoff = min(max(backoff * 2, 0.1), MAX_BACKOFF)
                self._store_failed(error)
                self._spill(everything=False)
            if self._spool is not None:
                self._spool.settle(self._durable)

    def _write(self, taken: list[tuple[int, PredictionBatch]]) -> str | None:
        """Commit the taken batches in chunks; if the store is down, put the rest back, in
        order, and return the error."""
        start = 0
        while start < len(taken):
            end, rows = start, 0
            while end < len(taken) and (
                end == start or rows + taken[end][1].rows <= self._commit_rows
            ):
                rows += taken[end][1].rows
                end += 1
            try:
                self._commit(
                    [row for _, batch in taken[start:end] for row in logged_predictions(batch)]
                )
            except StoreError as exc:
                rest = taken[start:]
                rest_rows = sum(batch.rows for _, batch in rest)
                with self._cond:
                    self._pending[:0] = rest
                    self._pending_rows += rest_rows
                    self._writing_rows -= rest_rows
                    self._writing = []
                    self._cond.notify_all()
                return f"{type(exc).__name__}: {exc}"
            with self._cond:
                self._writing_rows -= rows
                self._written += rows
                self._writing = taken[end:]
                # Nothing older waits in memory: the newest submitted batch bounds what
                # is committed (batches sent straight to the spool are counted apart).
                idle = not self._pending and not self._writing
                self._durable = self._submitted if idle else taken[end - 1][0]
                self._cond.notify_all()
            start = end
        with self._cond:
            if not self._pending and not self._writing:
                self._durable = self._submitted
            self._cond.notify_all()
        return None

    def _commit(self, rows: list[LoggedPrediction]) -> None:
        """Write rows; rows whose content the store refuses are found by halving the batch
        and set aside. Raises `StoreError` only when the store itself fails."""
        try:
            self._store.add(rows)
            return
        except StoreRefused as exc:
            refusal: Exception = exc
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - an unknown failure: isolate, never stall
            refusal = exc
        if len(rows) == 1:
            self._set_aside(rows, refusal)
            return
        middle = len(rows) // 2
        self._commit(rows[:middle])
        self._commit(rows[middle:])

    def _set_aside(self, rows: Sequence[LoggedPrediction], error: Exception) -> None:
        reason = f"{type(error).__name__}: {error}"
        path = set_aside(rows, reason, self._dead_letter_dir)
        with self._cond:
            self._dead_lettered += len(rows)
        callback = self.on_dead_letter
        if callback is not None:
            try:
                callback(DeadLettered(len(rows), path, reason, rows[0].model, rows[0].version))
            except Exception:  # noqa: BLE001 - the alert is also in the log and the metrics
                _log.warning("could not raise the dead-letter alert", exc_info=True)

    def _replay_file(self, path: Path) -> tuple[int, str | None]:
        """Write a spool segment's records to the store: (rows, the store's error or None)."""
        done = 0
        chunk: list[LoggedPrediction] = []
        try:
            for payload in read_records(path):
                try:
                    chunk.extend(logged_predictions(PredictionBatch(**decode_batch(payload))))
                except Exception as exc:  # noqa: BLE001 - a record keel cannot read
                    _log.error("prediction spool %s: an unreadable record (%s)", path, exc)
                    continue
                if len(chunk) >= self._commit_rows:
                    self._commit(chunk)
                    done += len(chunk)
                    chunk = []
            self._commit(chunk)
        except StoreError as exc:
            return done, f"{type(exc).__name__}: {exc}"
        return done + len(chunk), None

    def _replay_own(self) -> str | None:
        assert self._spool is not None
        for path in self._spool.take_replay():
            rows, error = self._replay_file(path)
            if error is not None:
                return error
            self._spool.replayed(path)
            with self._cond:
                self._written += rows
                self._cond.notify_all()
        return None

    def _replay_dead(self) -> str | None:
        assert self._spool is not None
        for dead in self._spool.dead_spools():
            total = 0
            for path in dead.segments:
                rows, error = self._replay_file(path)
                total += rows
                if error is not None:
                    dead.release()
                    return error
            dead.remove()
            with self._cond:
                self._written += total
            if dead.segments:
                _log.info(
                    "prediction log: wrote %d rows from the spool of stopped process %s",
                    total,
                    dead.owner,
                )
        return None

    def _spill(self, *, everything: bool) -> bool:
        """Move what memory holds to the spool (the store is down, or shutdown ran out of
        time). `everything` includes the batch being written. False if there is no spool or
        it cannot be written (the rows stay in memory)."""
        spool = self._spool
        if spool is None:
            return False
        with self._cond:
            batches = self._pending + (self._writing if everything else [])
            if not batches:
                return True
            if self._durable_mode:
                # Already on the spool: marking it for replay is all the spilling needed.
                spool.mark_for_replay()
                rows = self._pending_rows + (self._writing_rows if everything else 0)
                self._pending = []
                self._pending_rows = 0
                if everything:
                    self._writing = []
                    self._writing_rows = 0
                self._carried += rows
                self._cond.notify_all()
                return True
            from_pending = self._pending
            self._pending = []
            moving = self._pending_rows
            self._pending_rows = 0
            self._writing_rows += moving
        try:
            end = 0
            for seq, batch in batches:
                end = spool.append(encode_batch(batch), seq=seq, rows=batch.rows, disk_only=True)
            spool.sync(end)
        except StoreError as exc:
            _log.error("prediction log: could not move rows to the spool: %s", exc)
            with self._cond:
                self._pending[:0] = from_pending
                self._pending_rows += moving
                self._writing_rows -= moving
                self._cond.notify_all()
            return False
        with self._cond:
            self._writing_rows -= moving
            if everything:
                self._writing_rows = 0
                self._writing = []
            self._carried += sum(batch.rows for _, batch in batches)
            self._cond.notify_all()
        return True

    def _store_failed(self, error: str) -> None:
        now = time.monotonic()
        with self._cond:
            self._failures += 1
            self._last_error = error
            first = self._down_since is None
            if first:
                self._down_since = now
                self._down_failures = 0
                self._carried = 0
                self._last_summary = now
            self._down_failures += 1
            self._cond.notify_all()
        where = (
            f"rows wait on the spool at {self._spool.folder}"
            if self._spool is not None
            else f"rows wait in memory (up to serving.log.max_buffer, {self._max_buffer:,})"
        )
        if first:
            _log.warning("prediction log: the store is unreachable (%s); %s", error, where)
        elif now - self._last_summary >= SUMMARY_EVERY:
            self._last_summary = now
            _log.warning(
                "prediction log: the store is still unreachable after %.0f s (%d failed "
                "attempts, %d rows carried on the spool, %d in memory; last error: %s)",
                now - (self._down_since or now),
                self._down_failures,
                self._carried,
                self.buffered,
                error,
            )

    def _store_back(self) -> None:
        with self._cond:
            since = self._down_since
            self._down_since = None
            self._last_error = None
        if since is not None:
            _log.warning(
                "prediction log: the store is back after %.1f s; %d rows carried on the "
                "spool meanwhile are written",
                time.monotonic() - since,
                self._carried,
            )


def _close_at_exit(ref: weakref.ReferenceType[StoredPredictionLog]) -> None:
    log = ref()
    if log is None:
        return
    with contextlib.suppress(StoreError):  # close has logged how many rows were not written
        log.close(timeout=EXIT_FLUSH_TIMEOUT)


def open_prediction_log(
    project: Workspace, on_dead_letter: Callable[[DeadLettered], None] | None = None
) -> PredictionLog:
    """The project's prediction log as keel.yaml's `serving.log` configures it. Opening it
    takes this process's spool; its writer then replays what stopped processes left."""
    spec = project.spec.serving.log
    if not spec.enabled:
        return NullPredictionLog()
    folder = spool_dir(project)
    return StoredPredictionLog(
        project.metadata.predictions,
        flush_interval=spec.flush_interval,
        max_buffer=spec.max_buffer,
        spool=Spool(folder),
        durable=spec.durability == "durable",
        dead_letter=folder / "dead-letter",
        on_dead_letter=on_dead_letter,
    )


def spool_dir(project: Workspace) -> Path:
    """`serving.log.spool_dir`, relative to the project folder; `.keel/spool` by default."""
    configured = project.spec.serving.log.spool_dir
    if configured is None:
        return project.settings.state_dir / "spool"
    return configured if configured.is_absolute() else project.settings.project_dir / configured
