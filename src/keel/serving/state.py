"""What a server serves, kept in step with the registry while it runs.

`ServingState.refresh` reads every model's aliases and builds a new `Route` per model,
loading (fetch, verify, load, warm) any version not already loaded. A version that fails
to load leaves the previous holder of its slot serving, and raises an alert: an error in
the log, `keel_model_load_failures` on /metrics, and a `serving.load_failed` event in the
audit log. A background thread watches the audit log's head and refreshes when it moves,
so a promotion or rollback reaches every running server within about one
`serving.reload_interval`. Swapping routes is one reference assignment: a request that
already picked a version finishes on it.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from keel.errors import KeelError
from keel.metadata.outage import Outage
from keel.serving.codec import Batch
from keel.serving.metrics import ServingMetrics
from keel.serving.slots import Route, ServedVersion, load_version

if TYPE_CHECKING:
    from keel.spec import ServingSpec
    from keel.workspace import Workspace

__all__ = ["RefreshReport", "ServingState"]

_log = logging.getLogger(__name__)

#: Recent small requests kept per model to warm new versions with real traffic.
_WARM_REQUESTS: Final = 4
#: Even when the audit log is quiet, re-read the aliases this often (seconds).
_FULL_REFRESH_S: Final = 60.0
#: A version that failed to load is retried after this long (seconds), or when an alias moves.
_RETRY_FAILED_S: Final = 60.0


@dataclass
class RefreshReport:
    """What one refresh did."""

    loaded: list[str] = field(default_factory=list)
    switched: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class ServingState:
    """The routes of every model with a `production` holder, kept current."""

    def __init__(self, project: Workspace, spec: ServingSpec, metrics: ServingMetrics) -> None:
        self._project = project
        self._spec = spec
        self._metrics = metrics
        self._routes: dict[str, Route] = {}
        self._loaded: dict[tuple[str, int], ServedVersion] = {}
        self._failed: dict[tuple[str, int], tuple[float, str]] = {}
        self._recent: dict[str, deque[Batch]] = {}
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._head = -1
        self._last_full = 0.0
        self._actor = f"keel-serve@{socket.gethostname()}"
        self.refreshed = threading.Event()

    # --- reading (request path) ---------------------------------------------------------

    @property
    def routes(self) -> Mapping[str, Route]:
        return self._routes

    def route(self, model: str) -> Route | None:
        return self._routes.get(model)

    @property
    def failures(self) -> dict[str, str]:
        """Versions that failed to load, with the error (paths and details included: for
        the log and operators, not for unauthenticated endpoints)."""
        return {f"{m}@{v}": error for (m, v), (_, error) in self._failed.items()}

    @property
    def failed_versions(self) -> list[str]:
        """The versions that failed to load, without details."""
        return sorted(f"{m}@{v}" for m, v in self._failed)

    def remember(self, model: str, batch: Batch) -> None:
        """Keep a small validated request to warm the model's next versions with."""
        if batch.rows <= 16:
            self._recent.setdefault(model, deque(maxlen=_WARM_REQUESTS)).append(batch)

    # --- refreshing -----------------------------------------------------------------------

    def refresh(self, *, force_retry: bool = False) -> RefreshReport:
        """Re-read the aliases and swap in new routes; never raises for one model's failure."""
        with self._refresh_lock:
            return self._refresh(force_retry)

    def _refresh(self, force_retry: bool) -> RefreshReport:
        report = RefreshReport()
        metadata = self._project.metadata
        head, _ = metadata.audit.head()
        wanted_aliases = ["production", "canary", *self._spec.shadow]
        routes: dict[str, Route] = {}
        for registered in metadata.models.list_models():
            held = {a.name: a.version for a in registered.aliases}
            if "production" not in held:
                continue
            old = self._routes.get(registered.name)
            chosen: dict[str, ServedVersion | None] = {}
            for alias in wanted_aliases:
                number = held.get(alias)
                current = _slot_of(old, alias)
                if number is None:
                    chosen[alias] = None
                    continue
                served = self._get(registered.name, number, report, force_retry)
                chosen[alias] = served if served is not None else current
            production = chosen["production"]
            if production is None:
                continue
            canary = chosen.get("canary")
            shadows = {
                alias: served
                for alias in self._spec.shadow
                if (served := chosen.get(alias)) is not None
            }
            route = Route(
                registered.name,
                production=production,
                canary=canary,
                canary_share=self._spec.canary_share if canary is not None else 0.0,
                shadows=shadows,
            )
            if old is None or old.describe() != route.describe():
                report.switched.append(registered.name)
                if old is not None:
                    self._metrics.reloads.labels(registered.name).inc()
            routes[registered.name] = route
        self._routes = routes  # one assignment: requests see the old or the new, never a mix
        self._publish_metrics(routes)
        self._forget_unused(routes)
        self._head = head
        self._last_full = time.monotonic()
        self.refreshed.set()
        return report

    def _get(
        self, model: str, number: int, report: RefreshReport, force_retry: bool
    ) -> ServedVersion | None:
        key = (model, number)
        if key in self._loaded:
            return self._loaded[key]
        failed = self._failed.get(key)
        if (
            failed is not None
            and not force_retry
            and time.monotonic() - failed[0] < _RETRY_FAILED_S
        ):
            return None
        try:
            version = self._project.metadata.models.get(model, number)
            served = load_version(
                self._project, version, warm_with=list(self._recent.get(model, ()))
            )
        except Exception as exc:  # noqa: BLE001 - one bad version must not stop the server
            error = exc.message if isinstance(exc, KeelError) else f"{type(exc).__name__}: {exc}"
            self._fail(model, number, error, first=failed is None)
            report.failed[f"{model}@{number}"] = error
            return None
        self._failed.pop(key, None)
        self._loaded[key] = served
        report.loaded.append(served.ref)
        _log.info("loaded %s in %.2fs", served.ref, served.load_seconds)
        return served

    def _fail(self, model: str, number: int, error: str, *, first: bool) -> None:
        self._failed[(model, number)] = (time.monotonic(), error)
        self._metrics.load_failures.labels(model, str(number)).inc()
        _log.error(
            "%s@%s failed to load; the previous version keeps serving: %s", model, number, error
        )
        if not first:
            return
        try:
            self._project.metadata.audit.record(
                actor=self._actor,
                kind="serving.load_failed",
                model=model,
                version=number,
                reason=error[:500],
                evidence={"host": socket.gethostname()},
            )
        except Exception:  # noqa: BLE001 - the alert is also in the log and the metrics
            _log.warning("could not record the load failure in the audit log", exc_info=True)

    def _publish_metrics(self, routes: Mapping[str, Route]) -> None:
        serving: list[tuple[str, str, str]] = []
        for route in routes.values():
            for slot, served in (("production", route.production), ("canary", route.canary)):
                if served is not None:
                    serving.append((route.model, str(served.version), slot))
            for served in route.shadows.values():
                serving.append((route.model, str(served.version), "shadow"))
        self._metrics.publish_served(serving)

    def _forget_unused(self, routes: Mapping[str, Route]) -> None:
        used = {(r.model, v) for r in routes.values() for v in r.served()}
        for key in list(self._loaded):
            if key not in used:
                del self._loaded[key]

    # --- watching -------------------------------------------------------------------------

    def start(self) -> None:
        """Refresh now, then keep watching in a daemon thread."""
        self.refresh()
        self._thread = threading.Thread(target=self._watch, name="keel-reload", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def _watch(self) -> None:
        interval = self._spec.reload_interval.total_seconds()
        outage = Outage("the reload watcher", "the served versions stay as they are")
        while not self._stop.wait(interval):
            try:
                head, _ = self._project.metadata.audit.head()
                stale = time.monotonic() - self._last_full > _FULL_REFRESH_S
                if head != self._head or stale:
                    report = self.refresh(force_retry=head != self._head)
                    if report.switched:
                        _log.info("switched routes of %s", ", ".join(report.switched))
            except Exception as exc:  # noqa: BLE001 - keep watching; the store may come back
                outage.failed(exc)
            else:
                outage.recovered()


def _slot_of(route: Route | None, alias: str) -> ServedVersion | None:
    if route is None:
        return None
    if alias == "production":
        return route.production
    if alias == "canary":
        return route.canary
    return route.shadows.get(alias)
