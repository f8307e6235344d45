"""Webhooks: every event a webhook wants POSTed to it, in seq order, at least once, signed.

A webhook request carries the event as JSON (`AuditEvent.to_dict()` plus `delivery`) and
the headers `X-Keel-Event` (the kind), `X-Keel-Delivery` (`<webhook id>-<seq>`) and
`X-Keel-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`, the HMAC being keyed with the
webhook's secret over `"<t>."` followed by the raw body; receivers check it with
`keel.events.verify_signature`.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Final

from keel.domain.audit import AuditEvent
from keel.errors import IntegrityError, NotFound
from keel.metadata.base import Webhook
from keel.serial import dump

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["DeliveryReport", "WebhookDelivery", "deliver_webhooks", "sign", "verify_signature"]

#: How much of a failed response's body is kept as the error, to show what the receiver said.
_ERROR_BODY: Final = 200
_HEX_SIGNATURE = re.compile(r"^[0-9a-f]{64}$")


# --- webhooks ----------------------------------------------------------------------------


def sign(secret: str, body: bytes, *, at: float | None = None) -> str:
    """The `X-Keel-Signature` header for `body`: `t=<unix seconds>,v1=<hex HMAC-SHA256>`."""
    moment = int(time.time() if at is None else at)
    return f"t={moment},v1={_mac(secret, moment, body)}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance: float = 300,
    now: float | None = None,
) -> bool:
    """Whether `header` (the request's `X-Keel-Signature`) signs `body` with `secret`.

    For webhook receivers. `body` must be the raw request body, before any JSON parsing.
    False, never an exception, for a malformed header, another secret, an altered body or
    a timestamp more than `tolerance` seconds from `now` (replays of old requests).
    The comparison takes constant time.

        from keel.events import verify_signature

        if not verify_signature(SECRET, request.headers["X-Keel-Signature"], raw_body):
            return 401
    """
    moment: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            if moment is not None or not value.isascii() or not value.isdigit():
                return False
            moment = int(value)
        elif key == "v1":
            candidates.append(value)
    if moment is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - moment) > tolerance:
        return False
    expected = _mac(secret, moment, body)
    matched = False
    for candidate in candidates:
        if _HEX_SIGNATURE.match(candidate):
            # No early exit: the time taken does not tell which candidate matched.
            matched |= hmac.compare_digest(candidate, expected)
    return matched


def _mac(secret: str, moment: int, body: bytes) -> str:
    message = f"{moment}.".encode("ascii") + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """What one pass did for one webhook."""

    webhook: str
    url: str
    delivered: int  # requests the receiver accepted
    cursor: int  # the newest event seq it has now
    error: str | None = None  # why the pass stopped for this webhook
    failed_seq: int | None = None  # the event that failed; it is retried next pass
    more: bool = False  # events were left for the next pass (max_events)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return dump(self, after={"url": {"ok": self.ok}})


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one delivery pass did, webhook by webhook."""

    webhooks: tuple[WebhookDelivery, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return all(item.ok for item in self.webhooks)

    @property
    def failed(self) -> tuple[WebhookDelivery, ...]:
        return tuple(item for item in self.webhooks if not item.ok)

    @property
    def delivered(self) -> int:
        return sum(item.delivered for item in self.webhooks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "delivered": self.delivered,
            "webhooks": [item.to_dict() for item in self.webhooks],
        }


def deliver_webhooks(
    project: Workspace, *, timeout: float = 5.0, max_events: int = 1000
) -> DeliveryReport:
    """One delivery pass: POST each enabled webhook the events after its cursor it wants.

    In seq order, one request per event; a 2xx moves the webhook's cursor past the event.
    Anything else (another status, a redirect, a timeout, a refused connection) is
    recorded as a failure and ends the pass for that webhook, so its events stay in order
    and the failed one is the first sent next pass. Events it does not want move its
    cursor too. At most `max_events` events per webhook are looked at per pass.
    """
    store = project.metadata
    results: list[WebhookDelivery] = []
    for webhook in store.webhooks.list():
        if webhook.disabled_at is not None:
            continue
        results.append(_deliver_one(project, webhook, timeout=timeout, max_events=max_events))
    return DeliveryReport(tuple(results))


def _deliver_one(
    project: Workspace, webhook: Webhook, *, timeout: float, max_events: int
) -> WebhookDelivery:
    store = project.metadata
    events = store.audit.events(after=webhook.cursor, limit=max_events)
    more = len(events) == max_events
    secret: str | None = None  # read only when there is something to sign
    delivered = 0
    cursor = webhook.cursor  # what is recorded
    position = webhook.cursor  # what is done, including events it does not want
    try:
        for event in events:
            if not webhook.wants(event.kind):
                position = event.seq
                continue
            if secret is None:
                try:
                    secret = store.webhooks.secret(webhook.id)
                except IntegrityError as exc:
                    # Sealed with another key: this webhook fails (and says why), the others
                    # are still delivered.
                    store.webhooks.failed(webhook.id, exc.message)
                    return WebhookDelivery(
                        webhook.id, webhook.url, delivered, cursor, exc.message, event.seq, more
                    )
            error = _post(webhook, event, secret, timeout=timeout)
            if error is not None:
                store.webhooks.failed(webhook.id, error)
                return WebhookDelivery(
                    webhook.id, webhook.url, delivered, cursor, error, event.seq, more
                )
            store.webhooks.delivered(webhook.id, event.seq)
            delivered += 1
            cursor = position = event.seq
        if position > cursor:
            store.webhooks.delivered(webhook.id, position)
            cursor = position
    except NotFound:
        # Removed while we were delivering: nothing left to record for it.
        return WebhookDelivery(webhook.id, webhook.url, delivered, cursor)
    return WebhookDelivery(webhook.id, webhook.url, delivered, cursor, more=more)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A signed event is for the URL that was subscribed: a redirect is a failed delivery
    # (urllib would otherwise resend a POST as a bodyless GET on 301/302/303).
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


def _post(webhook: Webhook, event: AuditEvent, secret: str, *, timeout: float) -> str | None:
    """POST one event; None if the receiver accepted it, else why not."""
    delivery = f"{webhook.id}-{event.seq}"
    body = json.dumps({**event.to_dict(), "delivery": delivery}, sort_keys=True).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 - the URL was checked to be http(s) on add
        webhook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": _user_agent(),
            "X-Keel-Event": event.kind,
            "X-Keel-Delivery": delivery,
            "X-Keel-Signature": sign(secret, body),
        },
    )
    try:
        # Built per request: it reads the proxy variables (HTTPS_PROXY, NO_PROXY) then.
        opener = urllib.request.build_opener(_NoRedirects())
        with opener.open(request, timeout=timeout) as response:
            status = int(response.status)
            reason = str(response.reason)
            # A non-2xx that urllib does not raise for (1xx): say what the receiver said.
            detail = "" if 200 <= status < 300 else _snippet(response.read(_ERROR_BODY))
    except urllib.error.HTTPError as exc:
        with exc:
            status, reason, detail = exc.code, str(exc.reason), _snippet(_read(exc))
    except urllib.error.URLError as exc:
        return f"cannot reach {webhook.url}: {exc.reason}"
    except (OSError, ValueError, http.client.HTTPException) as exc:  # timeouts, resets, ...
        return f"request to {webhook.url} failed: {type(exc).__name__}: {exc}".rstrip(": ")
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        detail = "redirects are not followed; subscribe the final URL"
    return f"HTTP {status} {reason}" + (f": {detail}" if detail else "")


def _read(response: urllib.error.HTTPError) -> bytes:
    try:
        return response.read(_ERROR_BODY)
    except (OSError, http.client.HTTPException):
        return b""


def _snippet(data: bytes) -> str:
    return " ".join(data.decode("utf-8", "replace").split())


def _user_agent() -> str:
    from keel.version import __version__

    return f"keel/{__version__}"
