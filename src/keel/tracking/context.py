"""The tracking API for training code: a `RunContext` passed in explicitly, no global run.

    tracker = Tracker(project.metadata, user="ana")
    with tracker.start_run(params={"lr": 0.1}, seed=7) as run:
        train(run)                      # run.log_metric("loss", 0.3, step=1), ...

Speed comes from buffering: params, metrics and tags are kept in memory and written in one
transaction when the buffer holds `flush_items` entries, when `flush_seconds` have passed
since the last write (checked on every log call), every `heartbeat_seconds` from a small
background thread, and always at finish, together with the final status.

Loss window: if the process is killed (SIGKILL, power cut), at most the logs of the last
`flush_seconds` (default 1 s), and never more than `flush_items` (default 1000) entries, are
lost; a process silent for longer loses up to `heartbeat_seconds` (default 60 s) of logs. The
run itself is never left `running`: `keel runs list|show` mark it failed (see
`reap_dead_runs`). Everything written before the kill, and everything after a normal finish,
is durable.
"""

from __future__ import annotations

import mimetypes
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from numbers import Integral
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Final, Literal, Self, TypedDict, Unpack

from keel.domain.digest import Digest
from keel.domain.run import (
    Metric,
    Run,
    RunArtifact,
    check_key,
    metric_value,
    new_run_id,
    param_text,
)
from keel.errors import ConfigError, Conflict, KeelError

if TYPE_CHECKING:
    from keel.artifacts.base import ArtifactStore
    from keel.metadata.base import MetadataStore, Runs

__all__ = [
    "DEFAULT_FLUSH_ITEMS",
    "DEFAULT_FLUSH_SECONDS",
    "DEFAULT_HEARTBEAT_SECONDS",
    "RunContext",
    "RunOptions",
    "Tracker",
    "pid_alive",
    "reap_dead_runs",
]

DEFAULT_FLUSH_ITEMS: Final = 1000
DEFAULT_FLUSH_SECONDS: Final = 1.0
#: Well under the reaper's 10-minute heartbeat timeout, so a live run is never reaped.
DEFAULT_HEARTBEAT_SECONDS: Final = 60.0
#: How long a run may go without a heartbeat before any host may declare it dead.
DEFAULT_HEARTBEAT_TIMEOUT: Final = timedelta(minutes=10)


class RunOptions(TypedDict, total=False):
    """What a run starts with: its configured params and tags, seed, and lineage."""

    params: Mapping[str, object]
    tags: Mapping[str, object]
    seed: int
    dataset: Digest
    git_commit: str
    git_dirty: bool
    git_diff_hash: str
    feature_code_hash: str
    training_code_hash: str
    environment: str


class Tracker:
    """Starts runs in a metadata store; the factory of `RunContext`s.

    `clock` (monotonic seconds) decides when a buffer is old enough to flush; tests pass a
    fake one. `heartbeat_seconds=None` turns the background heartbeat off.
    """

    def __init__(
        self,
        metadata: MetadataStore,
        *,
        user: str,
        artifacts: Callable[[], ArtifactStore] | None = None,
        host: str | None = None,
        pid: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        flush_items: int = DEFAULT_FLUSH_ITEMS,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
        heartbeat_seconds: float | None = DEFAULT_HEARTBEAT_SECONDS,
    ) -> None:
        if flush_items < 1:
            raise ValueError(f"flush_items must be at least 1, got {flush_items}")
        if flush_seconds < 0:
            raise ValueError(f"flush_seconds must be zero or more, got {flush_seconds}")
        if heartbeat_seconds is not None and heartbeat_seconds <= 0:
            raise ValueError(f"heartbeat_seconds must be positive, got {heartbeat_seconds}")
        self.metadata = metadata
        self.user = user
        self.host = host or socket.gethostname()
        self.pid = os.getpid() if pid is None else pid
        self._artifacts = artifacts
        self._clock = clock
        self._flush_items = flush_items
        self._flush_seconds = flush_seconds
        self._heartbeat_seconds = heartbeat_seconds
        # One heartbeat thread per tracker, not per run: starting a thread per run would
        # cost more than the run's own writes. It exits when no run is open.
        self._open: set[RunContext] = set()
        self._open_lock = threading.Lock()
        self._beat: threading.Thread | None = None

    def start_run(self, **options: Unpack[RunOptions]) -> RunContext:
        """Record a new running run (with its params and tags, in one transaction).

        Use the returned context in a `with` block, or call its `finish()`. Without a
        `seed`, one is drawn at random and recorded, so every run can be repeated.
        """
        params = {
            check_key("param", k): param_text(k, v) for k, v in options.get("params", {}).items()
        }
        tags = {
            check_key("tag", k): param_text(k, v, kind="tag")
            for k, v in options.get("tags", {}).items()
        }
        seed = options.get("seed")
        if seed is None:
            seed = secrets.randbelow(2**31)
        elif isinstance(seed, bool) or not isinstance(seed, Integral):
            raise ConfigError(
                f"seed must be an integer, got {type(seed).__name__} {seed!r}",
                problems=[("seed", "must be an integer")],
            )
        now = datetime.now(UTC)
        run = Run(
            id=new_run_id(now.timestamp()),
            status="running",
            started_at=now,
            heartbeat_at=now,
            user=self.user,
            host=self.host,
            pid=self.pid,
            dataset=options.get("dataset"),
            git_commit=options.get("git_commit"),
            git_dirty=options.get("git_dirty"),
            git_diff_hash=options.get("git_diff_hash"),
            feature_code_hash=options.get("feature_code_hash"),
            training_code_hash=options.get("training_code_hash"),
            environment=options.get("environment"),
            seed=int(seed),
        )
        self.metadata.runs.start(run, params=params, tags=tags)
        configured = MappingProxyType(dict(options.get("params", {})))
        context = RunContext(self, run, configured, params)
        if self._heartbeat_seconds is not None:
            with self._open_lock:
                self._open.add(context)
                if self._beat is None:
                    self._beat = threading.Thread(
                        target=self._heartbeat_loop,
                        args=(self._heartbeat_seconds,),
                        name="keel-run-heartbeat",
                        daemon=True,  # a run never finished must not keep the process alive
                    )
                    self._beat.start()
        return context

    def _closed(self, context: RunContext) -> None:
        with self._open_lock:
            self._open.discard(context)

    def _heartbeat_loop(self, interval: float) -> None:
        while True:
            time.sleep(interval)
            with self._open_lock:
                contexts = list(self._open)
                if not contexts:
                    self._beat = None
                    return
            for context in contexts:
                context._beat_once()


class RunContext:
    """One running run, handed to training code. Thread-safe: every method takes a lock.

    Log calls validate at once (a `ConfigError` naming the field and the rule, and nothing
    is logged), buffer, and write in batches; an error from writing a batch surfaces from
    the call that triggered it, and the batch stays buffered for the next attempt.
    """

    def __init__(
        self, tracker: Tracker, run: Run, params: Mapping[str, object], logged: dict[str, str]
    ) -> None:
        self._tracker = tracker
        self._runs: Runs = tracker.metadata.runs
        self._run = run
        self._seed = run.seed if run.seed is not None else 0  # start_run always sets one
        self._configured = params
        self._lock = threading.Lock()
        self._logged: dict[str, str] = dict(logged)  # every param so far, for immutability
        self._params: dict[str, str] = {}  # buffered
        self._tags: dict[str, str] = {}
        self._metrics: list[Metric] = []
        self._next_step: dict[str, int] = {}
        self._metric_keys: set[str] = set()  # validated once: the hot path skips the regex
        self._last_flush = tracker._clock()
        self._final: Run | None = None

    # --- what the run is --------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._run.id

    @property
    def run(self) -> Run:
        """The run as recorded: at start, or as it finished."""
        return self._final or self._run

    @property
    def seed(self) -> int:
        """The run's seed: the configured one, or the one drawn and recorded at start."""
        return self._seed

    @property
    def params(self) -> Mapping[str, object]:
        """The configured training params, as given to `start_run` (read-only)."""
        return self._configured

    # --- logging ----------------------------------------------------------------------------

    def log_param(self, key: str, value: object) -> None:
        """Log a param. Logging a key again with another value is a `Conflict`."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, object]) -> None:
        """Log several params: all of them, or (on any invalid or conflicting one) none."""
        texts = {check_key("param", k): param_text(k, v) for k, v in params.items()}
        with self._lock:
            self._check_open()
            for key, text in texts.items():
                prior = self._logged.get(key)
                if prior is not None and prior != text:
                    raise Conflict(
                        f"param {key!r} of run {self.id} is already {prior!r}; "
                        f"it cannot become {text!r} (params are immutable)",
                        hint="log the new value under another key, or start a new run",
                    )
            for key, text in texts.items():
                if key not in self._logged:
                    self._logged[key] = text
                    self._params[key] = text
            self._maybe_flush()

    def log_metric(self, key: str, value: object, step: int | None = None) -> None:
        """Log one point of a metric series.

        Without `step`, the point goes one step after the key's previous point (0 first),
        so repeated calls build a series.
        """
        if key not in self._metric_keys:
            check_key("metric", key)
        number = metric_value(key, value)
        if step is not None:
            _check_step(key, step)
        now = datetime.now(UTC)
        with self._lock:
            self._check_open()
            self._metric_keys.add(key)
            at = self._next_step.get(key, 0) if step is None else int(step)
            self._next_step[key] = at + 1
            self._metrics.append(Metric(key, number, at, now))
            self._maybe_flush()

    def log_metrics(self, metrics: Mapping[str, object], step: int | None = None) -> None:
        """Log several metrics at one step (or each at its next step); all or none."""
        numbers = {check_key("metric", k): metric_value(k, v) for k, v in metrics.items()}
        if step is not None:
            for key in numbers:
                _check_step(key, step)
        now = datetime.now(UTC)
        with self._lock:
            self._check_open()
            for key, number in numbers.items():
                self._metric_keys.add(key)
                at = self._next_step.get(key, 0) if step is None else int(step)
                self._next_step[key] = at + 1
                self._metrics.append(Metric(key, number, at, now))
            self._maybe_flush()

    def set_tag(self, key: str, value: object) -> None:
        """Set a tag; a later value replaces an earlier one."""
        text = param_text(check_key("tag", key), value, kind="tag")
        with self._lock:
            self._check_open()
            self._tags[key] = text
            self._maybe_flush()

    def log_artifact(self, data: Path | str | bytes, name: str) -> RunArtifact:
        """Store a file (a path) or bytes in the artifact store as the run's `name`.

        The object is stored and recorded before the run names it, so a crash in between
        leaves an unreferenced object for gc, never a name without bytes.
        """
        check_key("artifact", name)
        if self._tracker._artifacts is None:
            raise ConfigError(
                "this tracker has no artifact store, so it cannot log artifacts",
                hint="start the run with Project.start_run, or give Tracker an artifact store",
            )
        with self._lock:
            self._check_open()
        store = self._tracker._artifacts()
        stored = store.put_bytes(data) if isinstance(data, bytes) else store.put_file(Path(data))
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        self._tracker.metadata.artifacts.record(
            stored.digest, size=stored.size, media_type=media_type, actor=self._tracker.user
        )
        artifact = RunArtifact(name, stored.digest, stored.size)
        self._runs.add_artifact(self.id, artifact)
        return artifact

    def flush(self) -> None:
        """Write everything buffered now, with a heartbeat."""
        with self._lock:
            self._check_open()
            self._flush_locked()

    # --- lifecycle --------------------------------------------------------------------------

    def finish(
        self, status: Literal["completed", "failed"] = "completed", error: str | None = None
    ) -> Run:
        """Write the buffered logs and the final status in one transaction; idempotent.

        If the write fails the error propagates and the logs stay buffered, so calling
        `finish` again retries.
        """
        with self._lock:
            if self._final is None:
                self._final = self._runs.finish(
                    self.id,
                    status,
                    error=error,
                    params=self._params,
                    metrics=self._metrics,
                    tags=self._tags,
                )
                self._params, self._metrics, self._tags = {}, [], {}
                self._tracker._closed(self)
            return self._final

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.finish()
            return
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        try:
            self.finish("failed", error=message)
        except KeelError as failure:
            # The training error is the one the user needs; keep it, and say why the run
            # could not be marked failed (the reaper will do it later).
            exc.add_note(f"keel could not record run {self.id} as failed: {failure}")

    # --- internals --------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._final is not None:
            raise Conflict(
                f"cannot log to run {self.id}: it has finished as {self._final.status}",
                hint="start a new run",
            )

    def _maybe_flush(self) -> None:
        pending = len(self._metrics) + len(self._params) + len(self._tags)
        due = self._tracker._clock() - self._last_flush >= self._tracker._flush_seconds
        if pending >= self._tracker._flush_items or (pending and due):
            self._flush_locked()

    def _flush_locked(self) -> None:
        # Reset the timer even when the write fails, so a store that is down is retried
        # once per interval rather than on every log call.
        self._last_flush = self._tracker._clock()
        self._runs.log_batch(
            self.id,
            params=self._params,
            metrics=self._metrics,
            tags=self._tags,
            heartbeat=datetime.now(UTC),
        )
        self._params, self._metrics, self._tags = {}, [], {}

    def _beat_once(self) -> None:
        """Flush (or just heartbeat); called by the tracker's heartbeat thread."""
        with self._lock:
            if self._final is not None:
                return
            try:
                self._flush_locked()
            except Conflict:
                # Finished elsewhere, or reaped: nothing left to keep alive.
                self._tracker._closed(self)
            except KeelError:
                pass  # e.g. the store is briefly unreachable; the next beat retries


def _check_step(key: str, step: object) -> None:
    if isinstance(step, bool) or not isinstance(step, Integral) or int(step) < 0:
        raise ConfigError(
            f"metric {key!r}: step must be a non-negative integer, got {step!r}",
            problems=[(f"metric {key} step", "must be a non-negative integer")],
        )


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (zombies count as gone)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        # os.kill would terminate the process there; leave such runs to the heartbeat.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True  # no /proc (macOS): kill(0) is all we know
    # The state follows the command name, which may itself contain spaces or ')'.
    fields = stat.rpartition(")")[2].split()
    return not fields or fields[0] != "Z"


def reap_dead_runs(
    runs: Runs,
    *,
    now: datetime | None = None,
    host: str | None = None,
    timeout: timedelta = DEFAULT_HEARTBEAT_TIMEOUT,
) -> list[Run]:
    """Mark failed every run whose process died without finishing it; returns them.

    A run on this host whose process is gone fails at once; a run anywhere fails after
    `timeout` without a heartbeat (its process, elsewhere, cannot be asked).
    """
    return runs.reap_dead(
        now or datetime.now(UTC), host or socket.gethostname(), pid_alive, timeout=timeout
    )
