"""`keel users add|list|disable`: who may act over HTTP, and with which roles."""

from __future__ import annotations

from typing import Any, Final

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.output import emit, json_option
from keel.domain.identity import ROLES, Role, check_roles, check_user_name

__all__ = ["TRUSTED", "users", "when"]

#: Said in every command's help: the CLI does not check roles, HTTP does.
TRUSTED: Final = (
    "The CLI trusts its caller: whoever can write the metadata database is in effect an "
    "admin, so these commands check no role. Roles are enforced over HTTP (API tokens)."
)


@click.group(help=f"Manage users and their roles.\n\n{TRUSTED}")
def users() -> None:
    pass


@users.command(
    help=(
        "Add a user with roles, or set the roles of an existing one.\n\n"
        "Setting roles replaces the old ones and re-enables a disabled user (its old "
        f"tokens stay revoked). Roles: {', '.join(ROLES)}.\n\n{TRUSTED}"
    )
)
@click.argument("name")
@click.option(
    "--role",
    "roles",
    type=click.Choice(ROLES),
    multiple=True,
    required=True,
    help="A role to grant; repeat for several.",
)
@json_option
@pass_cli
def add(cli: CliContext, name: str, roles: tuple[Role, ...], as_json: bool) -> int:
    check_user_name(name)  # a bad name fails before opening anything
    check_roles(roles)
    added = cli.project().add_user(name, roles=roles)

    def text() -> str:
        return f"user {name} {added.change}: roles {', '.join(_roles(added.user))}"

    emit(as_json, {"ok": True, **added.to_dict()}, text)
    return 0


@users.command(name="list", help=f"List users by name with their roles and state.\n\n{TRUSTED}")
@json_option
@pass_cli
def list_(cli: CliContext, as_json: bool) -> int:
    listed = cli.project().users()
    found = listed.users

    def text() -> str:
        if not found:
            return "no users yet: `keel users add NAME --role ROLE` adds one"
        lines = [f"{'NAME':<24}  {'STATE':<8}  {'CREATED (UTC)':<16}  {'BY':<12}  ROLES"]
        for user in found:
            lines.append(
                f"{user['name']!s:<24}  {user['state']!s:<8}  {when(user['created_at']):<16}  "
                f"{user['created_by']!s:<12}  {', '.join(_roles(user))}"
            )
        return "\n".join(lines)

    emit(as_json, {"ok": True, **listed.to_dict()}, text)
    return 0


@users.command(
    help=(
        "Disable a user: its tokens are revoked and stop working at once.\n\n"
        "`keel users add NAME --role ROLE` re-enables it; it then needs new tokens.\n\n"
        f"{TRUSTED}"
    )
)
@click.argument("name")
@json_option
@pass_cli
def disable(cli: CliContext, name: str, as_json: bool) -> int:
    check_user_name(name)
    disabled = cli.project().disable_user(name)

    def text() -> str:
        revoked = disabled.tokens_revoked
        tokens = f"; revoked {len(revoked)} token(s)" if revoked else ""
        return f"user {name} disabled{tokens}"

    emit(as_json, {"ok": True, **disabled.to_dict()}, text)
    return 0


def when(iso: object) -> str:
    """An ISO-8601 time as `YYYY-MM-DD HH:MM` for tables; `-` for none."""
    return "-" if iso is None else str(iso)[:16].replace("T", " ")


def _roles(user: dict[str, Any]) -> list[str]:
    return [str(role) for role in user["roles"]]
