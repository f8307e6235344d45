"""`project.add_webhook()`, `remove_webhook()` and `deliver_webhooks()`: audit events
POSTed, signed, to other systems."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from keel.verbs._actor import ActorLike, acting_name

if TYPE_CHECKING:
    from keel.events.webhooks import DeliveryReport
    from keel.metadata.base import Webhook
    from keel.workspace import Workspace

__all__ = [
    "VERIFY_HINT",
    "NewWebhook",
    "RemovedWebhook",
    "Webhooks",
    "add_webhook",
    "deliver_webhooks",
    "remove_webhook",
    "webhook_document",
    "webhooks",
]

#: Said with a new secret: the receiver's half of the contract.
VERIFY_HINT: Final = (
    "Each request carries X-Keel-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "
    '"<t>." + raw body, keyed with this secret>. Check it before trusting the body, e.g. '
    "keel.events.verify_signature(secret, header, raw_body); see docs/cli.md#webhooks."
)


def webhook_document(webhook: Webhook) -> dict[str, Any]:
    """A webhook as `keel webhooks list --json` prints it: never its secret."""
    return {
        "id": webhook.id,
        "url": webhook.url,
        "events": list(webhook.events),
        "created_at": webhook.created_at,
        "created_by": webhook.created_by,
        "cursor": webhook.cursor,
        "failures": webhook.failures,
        "last_error": webhook.last_error,
        "disabled_at": webhook.disabled_at,
    }


@dataclass(frozen=True)
class NewWebhook:
    """A new subscription and its signing `secret`, returned this once."""

    webhook: Webhook
    secret: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "webhook": webhook_document(self.webhook),
            "secret": self.secret,
            "verify": VERIFY_HINT,
        }


@dataclass(frozen=True)
class RemovedWebhook:
    """The id of the webhook unsubscribed."""

    removed: str

    def to_dict(self) -> dict[str, Any]:
        return {"removed": self.removed}


def add_webhook(
    project: Workspace, url: str, *, events: Sequence[str] = (), actor: ActorLike = None
) -> NewWebhook:
    """Subscribe `url` to the audit events committed from now on, of the kinds in `events`
    (e.g. `alias.moved`; none: every kind), as `keel webhooks add`. Each request is signed
    with the secret returned (`result.secret`, shown once; see `VERIFY_HINT`)."""
    webhook, secret = project.metadata.webhooks.add(
        url, events=tuple(events) or ("*",), actor=acting_name(project, actor)
    )
    return NewWebhook(webhook, secret)


def remove_webhook(
    project: Workspace, webhook_id: str, *, actor: ActorLike = None
) -> RemovedWebhook:
    """Unsubscribe a webhook and delete its secret (as `keel webhooks remove`)."""
    project.metadata.webhooks.remove(webhook_id, actor=acting_name(project, actor))
    return RemovedWebhook(webhook_id)


def deliver_webhooks(project: Workspace, *, timeout: float = 5.0) -> DeliveryReport:
    """One delivery pass (as `keel webhooks deliver`): POST each webhook the events it has
    not received yet, in order, one request each, waiting `timeout` seconds for each; a
    failed one is retried from the same event next pass. `report.ok` is false if any
    failed."""
    from keel.events import deliver_webhooks as deliver  # urllib only when delivering

    return deliver(project, timeout=timeout)


@dataclass(frozen=True)
class Webhooks:
    """Every webhook with its delivery cursor and failures; never its secret."""

    webhooks: list[Webhook]

    def to_dict(self) -> dict[str, Any]:
        return {"webhooks": [webhook_document(hook) for hook in self.webhooks]}


def webhooks(project: Workspace) -> Webhooks:
    """Every webhook, with its cursor, failures and last error (as `keel webhooks list`)."""
    return Webhooks(project.metadata.webhooks.list())
