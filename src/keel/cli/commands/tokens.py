"""`keel tokens create|list|revoke`: API tokens, which act over HTTP as their user."""

from __future__ import annotations

from datetime import timedelta

import click

from keel.cli.commands.users import TRUSTED, when
from keel.cli.context import CliContext, pass_cli
from keel.cli.output import emit, json_option
from keel.domain.duration import parse_duration
from keel.domain.identity import check_user_name
from keel.verbs.tokens import NOT_SHOWN_AGAIN

__all__ = ["tokens"]


@click.group(
    help=(
        "Create, list and revoke API tokens.\n\n"
        "A token (`Authorization: Bearer keel_...`) acts over HTTP as its user, with that "
        f"user's roles at the time of each request.\n\n{TRUSTED}"
    )
)
def tokens() -> None:
    pass


@tokens.command(
    help=(
        "Create a token for USER and print it once.\n\n"
        "Only a hash of the token's secret is stored, so a lost token cannot be shown "
        f"again: revoke it and create another.\n\n{TRUSTED}"
    )
)
@click.argument("user")
@click.option("--label", default=None, help="What the token is for, e.g. 'ci' (shown in lists).")
@click.option(
    "--ttl",
    default="90d",
    show_default=True,
    help="How long the token is valid, e.g. 12h, 30d, 2w; `never` for no expiry.",
)
@json_option
@pass_cli
def create(cli: CliContext, user: str, label: str | None, ttl: str, as_json: bool) -> int:
    check_user_name(user)
    lifetime = _ttl(ttl)
    created = cli.project().create_token(user, label=label, ttl=lifetime)
    token, record = created.value, created.token
    token_id = record["id"]
    if as_json:
        emit(True, {"ok": True, **created.to_dict()}, "")
        return 0
    expires = f"expires {when(record['expires_at'])} UTC" if lifetime else "never expires"
    click.echo(f"token {token_id} for {user} ({expires}):", err=True)
    click.echo(token)
    click.secho(f"warning: {NOT_SHOWN_AGAIN}", fg="yellow", err=True)
    return 0


@tokens.command(
    name="list",
    help=f"List tokens, oldest first, with their state; never their secrets.\n\n{TRUSTED}",
)
@click.option("--user", default=None, help="Only this user's tokens.")
@json_option
@pass_cli
def list_(cli: CliContext, user: str | None, as_json: bool) -> int:
    listed = cli.project().tokens(user=user)
    found = listed.tokens

    def text() -> str:
        if not found:
            return "no tokens yet: `keel tokens create USER` makes one"
        lines = [
            f"{'ID':<16}  {'USER':<16}  {'STATE':<8}  {'CREATED (UTC)':<16}  "
            f"{'EXPIRES (UTC)':<16}  LABEL"
        ]
        for token in found:
            lines.append(
                f"{token['id']!s:<16}  {token['user']!s:<16}  {token['state']!s:<8}  "
                f"{when(token['created_at']):<16}  {when(token['expires_at']):<16}  "
                f"{token['label'] or '-'}"
            )
        return "\n".join(lines)

    emit(as_json, {"ok": True, **listed.to_dict()}, text)
    return 0


@tokens.command(
    help=(
        "Revoke a token by its id: it stops working at once.\n\n"
        "TOKEN_ID is the 16 hex characters after `keel_` (see `keel tokens list`). "
        f"Revoking a revoked token changes nothing.\n\n{TRUSTED}"
    )
)
@click.argument("token_id")
@json_option
@pass_cli
def revoke(cli: CliContext, token_id: str, as_json: bool) -> int:
    revoked = cli.project().revoke_token(token_id)
    emit(as_json, {"ok": True, **revoked.to_dict()}, f"token {token_id} revoked")
    return 0


def _ttl(text: str) -> timedelta | None:
    if text.strip().lower() == "never":
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ttl") from None
