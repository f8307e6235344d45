"""One log line per change of a store's state, not one per poll.

Threads that poll the metadata store (the reload watcher, Prometheus scrapes of monitoring
metrics) see every poll fail while the store is down: a traceback each time buried real
errors under megabytes of repeats. `Outage` turns that into a line when the outage starts,
a summary every minute while it lasts, and a line with its duration when it ends.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Final

from keel.errors import KeelError, StoreError

__all__ = ["SUMMARY_EVERY_S", "Outage"]

_log = logging.getLogger(__name__)

#: While the store stays unreachable, one summary line this often (seconds).
SUMMARY_EVERY_S: Final = 60.0


class Outage:
    """Logs a store outage seen by something that polls: one line when it starts (with the
    traceback only if the error is not a store error), a summary every `SUMMARY_EVERY_S`
    while it lasts, one line when it ends; never a line per poll."""

    def __init__(self, who: str, meanwhile: str = "retrying") -> None:
        self._who = who
        self._meanwhile = meanwhile
        self._since: float | None = None
        self._failures = 0
        self._last_line = 0.0
        self._lock = threading.Lock()  # scrapes run in several threads

    def failed(self, exc: Exception) -> None:
        with self._lock:
            self._failed(exc)

    def recovered(self) -> None:
        with self._lock:
            self._recovered()

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        self._failures += 1
        error = exc.message if isinstance(exc, KeelError) else f"{type(exc).__name__}: {exc}"
        if self._since is None:
            self._since = self._last_line = now
            _log.warning(
                "%s cannot read the metadata store: %s; %s",
                self._who,
                error,
                self._meanwhile,
                exc_info=not isinstance(exc, StoreError),
            )
        elif now - self._last_line >= SUMMARY_EVERY_S:
            self._last_line = now
            _log.warning(
                "%s: the metadata store is still unreachable after %.0f s (%d failed polls): %s",
                self._who,
                now - self._since,
                self._failures,
                error,
            )

    def _recovered(self) -> None:
        if self._since is None:
            return
        _log.warning(
            "%s: the metadata store is back after %.1f s (%d failed polls)",
            self._who,
            time.monotonic() - self._since,
            self._failures,
        )
        self._since = None
        self._failures = 0
