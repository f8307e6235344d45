"""`keel ui`: the web UI (models, releases, approvals, lineage, monitoring, alerts) in a browser."""

from __future__ import annotations

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.errors import EXIT_OK
from keel.cli.output import json_option, json_out

__all__ = ["ui"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8090, show_default=True)
@click.option("--access-log", is_flag=True, help="Log every request.")
@json_option
@pass_cli
def ui(cli: CliContext, host: str, port: int, access_log: bool, as_json: bool) -> int:
    """Serve the web UI until interrupted: models with their aliases, health and open
    alerts; each version's lineage and gates; monitoring charts; release history, and
    requests approved or rejected in the page by a signed-in approver (API token); a
    prediction id's chain; the maturity scorecard. Reading needs no sign-in: put it behind
    HTTPS before it leaves loopback. `keel serve --ui` serves the same pages at /ui.
    --json prints the startup line as JSON (logs still go to stderr).
    """
    from keel.server import Listen, create_ui_app, serve_until_stopped

    app = create_ui_app(cli.project())
    listen = Listen(
        host, port, "keel ui", as_json=as_json, access_log=access_log, stdout=json_out()
    )
    serve_until_stopped(app, listen)
    return EXIT_OK
