"""`keel serve`: the project's models over HTTP (Open Inference Protocol v2 and `/predict`)."""

from __future__ import annotations

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.errors import EXIT_OK
from keel.cli.output import json_option, json_out

__all__ = ["serve"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--no-api", is_flag=True, help="Do not mount the registry API at /api/v1.")
@click.option("--ui", is_flag=True, help="Also serve the web UI at /ui (as `keel ui` does).")
@click.option("--access-log", is_flag=True, help="Log every request (off: /metrics counts them).")
@json_option
@pass_cli
def serve(
    cli: CliContext,
    host: str,
    port: int,
    no_api: bool,
    ui: bool,
    access_log: bool,
    as_json: bool,
) -> int:
    """Serve every model whose `production` alias is set, until interrupted.

    Each model answers with its production holder, or its canary holder for
    `serving.canary_share` of requests; `serving.shadow` aliases score every request off the
    request path. Alias moves (promotion, rollback) are picked up within about
    `serving.reload_interval`, without failing requests in flight. Every prediction gets an id
    and goes to the prediction log. SIGTERM or Ctrl-C drains requests and flushes the log
    within `serving.shutdown_timeout`; what the store did not take by then is kept on the
    local spool and written by the next start.
    --json prints the startup line as JSON (logs still go to stderr).
    """
    from keel.server import create_app, open_log, serve_until_stopped

    project = cli.project()
    spec = project.spec.serving
    log = open_log(project)
    app, serving = create_app(project, log=log, api=not no_api, ui=ui)
    # SIGTERM: a quarter of serving.shutdown_timeout (at most 5 s) to drain requests, the
    # rest to commit the prediction log and spill what the store did not take.
    timeout = spec.shutdown_timeout.total_seconds()
    drain = min(timeout / 4, 5.0)
    serving.stop_budget = timeout - drain
    serve_until_stopped(
        app,
        host=host,
        port=port,
        access_log=access_log,
        banner="keel serve",
        as_json=as_json,
        stdout=json_out(),
        drain_timeout=drain,
        detail="(OIP at /v2, /predict, /metrics, /openapi.json" + (", UI at /ui)" if ui else ")"),
    )
    return EXIT_OK
