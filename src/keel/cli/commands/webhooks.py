"""`keel webhooks add|list|remove|deliver`: POST audit events to other systems, signed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.errors import EXIT_CHECK_FAILED, EXIT_OK
from keel.cli.output import emit, json_option
from keel.verbs.webhooks import VERIFY_HINT

if TYPE_CHECKING:
    from keel.verbs import Webhook

__all__ = ["webhooks"]


@click.group()
def webhooks() -> None:
    """Send audit events (alias moves, approvals, registrations, ...) to HTTP endpoints."""


@webhooks.command()
@click.argument("url")
@click.option(
    "--event",
    "events",
    multiple=True,
    metavar="KIND",
    help="An event kind to send, e.g. alias.moved (repeatable; default: every kind).",
)
@json_option
@pass_cli
def add(cli: CliContext, url: str, events: tuple[str, ...], as_json: bool) -> int:
    """Subscribe URL to audit events committed from now on; prints its secret once."""
    added = cli.project().add_webhook(url, events=events)
    webhook, secret = added.webhook, added.secret

    def text() -> str:
        return "\n".join(
            [
                f"added webhook {webhook.id} -> {webhook.url} (events: {_kinds(webhook)})",
                f"secret  {secret}",
                "",
                "The secret is shown only now: store it with the receiver.",
                VERIFY_HINT,
            ]
        )

    emit(as_json, {"ok": True, **added.to_dict()}, text)
    return EXIT_OK


@webhooks.command(name="list")
@json_option
@pass_cli
def list_(cli: CliContext, as_json: bool) -> int:
    """List webhooks (never their secrets) with their delivery cursor and failures."""
    listed = cli.project().webhooks()
    found = listed.webhooks

    def text() -> str:
        if not found:
            return "no webhooks: `keel webhooks add URL` subscribes one"
        lines = [f"{'ID':<16}  {'CURSOR':>6}  {'FAILURES':>8}  {'EVENTS':<24}  URL"]
        for hook in found:
            lines.append(
                f"{hook.id:<16}  {hook.cursor:>6}  {hook.failures:>8}  {_kinds(hook):<24}  "
                f"{hook.url}" + ("  (disabled)" if hook.disabled_at is not None else "")
            )
            if hook.last_error:
                lines.append(f"{'':<16}  last error: {hook.last_error}")
        return "\n".join(lines)

    emit(as_json, {"ok": True, **listed.to_dict()}, text)
    return EXIT_OK


@webhooks.command()
@click.argument("webhook_id", metavar="ID")
@json_option
@pass_cli
def remove(cli: CliContext, webhook_id: str, as_json: bool) -> int:
    """Unsubscribe a webhook and delete its secret."""
    removed = cli.project().remove_webhook(webhook_id)
    emit(as_json, {"ok": True, **removed.to_dict()}, f"removed webhook {webhook_id}")
    return EXIT_OK


@webhooks.command()
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="Seconds to wait for each request.",
)
@json_option
@pass_cli
def deliver(cli: CliContext, timeout: float, as_json: bool) -> int:
    """Send every webhook the events it has not received yet; exit 1 if any failed.

    Events go in order, one request each; a failed one is retried, from the same event,
    on the next delivery.
    """
    report = cli.project().deliver_webhooks(timeout=timeout)

    def text() -> str:
        if not report.webhooks:
            return "no webhooks: `keel webhooks add URL` subscribes one"
        lines = []
        for item in report.webhooks:
            if item.ok:
                more = " (more to send: run again)" if item.more else ""
                lines.append(
                    f"ok      {item.webhook}  {item.url}: delivered {item.delivered}, "
                    f"cursor {item.cursor}{more}"
                )
            else:
                lines.append(
                    f"FAILED  {item.webhook}  {item.url}: event {item.failed_seq}: {item.error} "
                    f"(delivered {item.delivered} before it; it is retried next time)"
                )
        return "\n".join(lines)

    emit(as_json, report.to_dict(), text)
    return EXIT_OK if report.ok else EXIT_CHECK_FAILED


def _kinds(webhook: Webhook) -> str:
    return "*" if "*" in webhook.events else ", ".join(webhook.events)
