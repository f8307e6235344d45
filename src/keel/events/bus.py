"""Audit events in this process (`subscribe`, `publish`) and from other processes (`follow`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, Final

from keel.domain.audit import AuditEvent

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["EventBus", "Subscriber", "follow", "publish", "subscribe"]

# The package's logger: what users configure for events.
logger = logging.getLogger("keel.events")

Subscriber = Callable[[AuditEvent], None]


# --- in process ----------------------------------------------------------------------------


class EventBus:
    """Callbacks to run for events published in this process. Thread-safe.

    Callbacks run in the publishing thread, one event at a time in the order published;
    one that raises is logged and does not stop the others or the publisher.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[tuple[Subscriber, frozenset[str] | None]] = []

    def subscribe(
        self, callback: Subscriber, kinds: Collection[str] | None = None
    ) -> Callable[[], None]:
        """Call `callback(event)` for each published event (only `kinds`, if given).

        Returns the function that unsubscribes it (calling it twice is harmless).
        """
        entry = (callback, None if kinds is None else frozenset(kinds))
        with self._lock:
            self._subscribers.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                # By identity: the same callback may be subscribed twice, for other kinds.
                self._subscribers = [s for s in self._subscribers if s is not entry]

        return unsubscribe

    def publish(self, events: Iterable[AuditEvent]) -> None:
        """Run the matching callbacks for each event, in order."""
        with self._lock:
            # Callbacks run outside the lock, so one may subscribe or unsubscribe.
            subscribers = list(self._subscribers)
        if not subscribers:
            return
        for event in events:
            for callback, kinds in subscribers:
                if kinds is not None and event.kind not in kinds:
                    continue
                try:
                    callback(event)
                except Exception:  # a subscriber's bug must not fail the change
                    logger.exception(
                        "event subscriber %r failed on event %d (%s)",
                        callback,
                        event.seq,
                        event.kind,
                    )


#: The process's bus: what `subscribe`, `publish` and `notify` use.
_BUS: Final = EventBus()


def subscribe(callback: Subscriber, kinds: Collection[str] | None = None) -> Callable[[], None]:
    """Call `callback(event)` for every event published in this process (or only `kinds`).

    Returns the function that unsubscribes it. See `EventBus.subscribe`.
    """
    return _BUS.subscribe(callback, kinds)


def publish(events: Iterable[AuditEvent]) -> None:
    """Hand events to this process's subscribers; a failing subscriber is only logged."""
    _BUS.publish(events)


# --- other processes -------------------------------------------------------------------------


def follow(
    project: Workspace,
    after: int,
    kinds: Collection[str] | None = None,
    *,
    limit: int | None = None,
) -> list[AuditEvent]:
    """Events committed after seq `after`, oldest first (only `kinds`, if given).

    For processes that react to changes made elsewhere: remember the newest seq seen and
    poll with it, e.g. a server reloading its model when `alias.moved` names its alias.
    """
    return project.metadata.audit.events(
        after=after, kinds=None if kinds is None else sorted(kinds), limit=limit
    )
