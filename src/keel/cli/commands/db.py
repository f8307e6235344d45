"""`keel db`: the metadata schema, upgraded only by migrations."""

from __future__ import annotations

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.output import emit, json_option

__all__ = ["db"]


@click.group()
def db() -> None:
    """Inspect and upgrade the metadata database schema."""


@db.command()
@json_option
@pass_cli
def upgrade(cli: CliContext, as_json: bool) -> int:
    """Apply pending migrations (keel also does this when it opens the store)."""
    store = cli.project().metadata
    revision = store.upgrade()
    emit(
        as_json,
        {"ok": True, "url": store.url, "revision": revision.current, "head": revision.head},
        f"{store.url}: schema at {revision.current} (head {revision.head})",
    )
    return 0


@db.command()
@json_option
@pass_cli
def revision(cli: CliContext, as_json: bool) -> int:
    """Show the schema revision of the metadata database."""
    store = cli.project().metadata
    current = store.revision()
    emit(
        as_json,
        {
            "ok": True,
            "url": store.url,
            "revision": current.current,
            "head": current.head,
            "up_to_date": current.up_to_date,
        },
        f"{store.url}: schema at {current.current} (head {current.head})",
    )
    return 0
