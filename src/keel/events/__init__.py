"""Telling others what happened: audit events to in-process subscribers, pollers and webhooks.

Every committed change (a registration, a gate evaluation, an approval, an alias move, a
rollback) is an event of the audit log (`keel.domain.audit`). Three ways to react to one:

- In this process: `subscribe(callback, kinds=...)`; the release service calls
  `notify(project, events)` after each commit, which `publish`es to subscribers.
- In another process (a model server reloading when `production` moves): poll
  `follow(project, after=seq)` with the newest seq seen.
- Anywhere: webhooks (`keel webhooks add URL`). Each one receives every event it wants,
  in seq order, one POST per event, at least once: a failed delivery is retried, from
  the same event, on the next pass, so receivers should ignore a repeated
  `X-Keel-Delivery` id.

A webhook request carries the event as JSON (`AuditEvent.to_dict()` plus `delivery`) and
the headers `X-Keel-Event` (the kind), `X-Keel-Delivery` (`<webhook id>-<seq>`) and
`X-Keel-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`, the HMAC being keyed with the
webhook's secret over `"<t>."` followed by the raw body. A receiver checks it with
`verify_signature(secret, request.headers["X-Keel-Signature"], raw_body)` before parsing
the body; it rejects other secrets, altered bodies and timestamps older than 5 minutes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from keel.domain.audit import AuditEvent
from keel.errors import KeelError
from keel.events.bus import EventBus, Subscriber, follow, publish, subscribe
from keel.events.webhooks import (
    DeliveryReport,
    WebhookDelivery,
    deliver_webhooks,
    sign,
    verify_signature,
)

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = [
    "DeliveryReport",
    "EventBus",
    "Subscriber",
    "WebhookDelivery",
    "deliver_webhooks",
    "follow",
    "notify",
    "publish",
    "sign",
    "subscribe",
    "verify_signature",
]

# One logger for the package (its modules use it too): what users configure.
logger = logging.getLogger(__name__)

#: How long `notify` waits for one webhook request: it runs on a release's request path.
NOTIFY_TIMEOUT: Final = 2.0
#: Events one `notify` pass delivers per webhook at most; the rest go on the next pass.
NOTIFY_MAX_EVENTS: Final = 100


# --- after a change ---------------------------------------------------------------------------


def notify(project: Workspace, events: Iterable[AuditEvent]) -> DeliveryReport | None:
    """Tell everyone about committed events: subscribers here, then webhooks, best effort.

    What the release service calls after each commit. Never raises for a delivery
    problem (the change has committed; failing now would only hide that): failures are
    logged as warnings, recorded on the webhook, and retried on the next pass. With no
    webhook registered it costs one query. Returns the delivery report, or None if the
    pass itself could not run.
    """
    publish(list(events))
    try:
        report = deliver_webhooks(project, timeout=NOTIFY_TIMEOUT, max_events=NOTIFY_MAX_EVENTS)
    except KeelError as exc:
        logger.warning("webhook delivery did not run: %s", exc.message)
        return None
    except Exception:  # the change has committed: a delivery bug must not look like it failed
        logger.exception("webhook delivery failed unexpectedly")
        return None
    for item in report.failed:
        logger.warning(
            "webhook %s (%s) failed at event %s: %s; it is retried on the next delivery",
            item.webhook,
            item.url,
            item.failed_seq,
            item.error,
        )
    return report
