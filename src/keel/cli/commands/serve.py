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
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    envvar="KEEL_SERVE_WORKERS",
    help="Processes serving on the port (default: the cores this process may use, a "
    "container's CPU limit included; also KEEL_SERVE_WORKERS).",
)
@click.option(
    "--grpc-port",
    type=click.IntRange(1, 65535),
    default=None,
    envvar="KEEL_SERVE_GRPC_PORT",
    help="Also answer the Open Inference Protocol over gRPC on this port (the `grpc` extra; "
    "8081 in the generated manifests; also KEEL_SERVE_GRPC_PORT).",
)
@json_option
@pass_cli
def serve(
    cli: CliContext,
    host: str,
    port: int,
    no_api: bool,
    ui: bool,
    access_log: bool,
    workers: int | None,
    grpc_port: int | None,
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
    With --workers N (by default one per core), N processes share the port, each with its
    own models, prediction log writer and spool files; /metrics shows the sum over all of
    them, and reload, canary shares and SIGTERM hold in each. A worker that dies is
    replaced.
    With --grpc-port, the same models answer the Open Inference Protocol's gRPC service
    (inference.GRPCInferenceService, as KServe and Triton define it) on that port too, with
    the same routing, validation, prediction ids, log and metrics; every worker serves it.
    --json prints the startup line as JSON (logs still go to stderr).
    """
    from keel.server import (
        GrpcListen,
        Listen,
        WorkerOptions,
        available_cores,
        check_grpc_port,
        create_app,
        open_log,
        serve_project_workers,
        serve_until_stopped,
    )

    project = cli.project()
    spec = project.spec.serving
    # SIGTERM: a quarter of serving.shutdown_timeout (at most 5 s) to drain requests, the
    # rest to commit the prediction log and spill what the store did not take.
    timeout = spec.shutdown_timeout.total_seconds()
    drain = min(timeout / 4, 5.0)
    count = available_cores() if workers is None else workers
    grpc = None
    if grpc_port is not None:
        grpc = GrpcListen(host, grpc_port, reuse_port=count > 1, grace=drain)
        check_grpc_port(grpc)
    detail = "(OIP at /v2, /predict, /metrics, /openapi.json"
    detail += (", UI at /ui" if ui else "") + (f", gRPC on port {grpc_port}" if grpc else "") + ")"
    listen = Listen(
        host,
        port,
        "keel serve",
        as_json=as_json,
        detail=detail,
        grpc_port=grpc_port,
        access_log=access_log,
        drain_timeout=drain,
        stdout=json_out(),
    )
    if count == 1:
        app, serving = create_app(project, log=open_log(project), api=not no_api, ui=ui, grpc=grpc)
        serving.stop_budget = timeout - drain
        serve_until_stopped(app, listen)
        return EXIT_OK
    project.metadata  # noqa: B018 - a store that cannot open fails here, once
    options = WorkerOptions(
        str(project.settings.project_dir),
        env=dict(cli.env),
        api=not no_api,
        ui=ui,
        stop_budget=timeout - drain,
        grpc=grpc,
    )
    serve_project_workers(options, listen, workers=count)
    return EXIT_OK
