"""What `keel serve` and `keel ui` run: the HTTP apps put together.

This module composes keel's HTTP parts, so that none of them has to know the others:
serving's inference app (`keel.serving.app`) with, on the same port, the registry API at
`/api/v1` and the web UI at `/ui` (`keel.web`), all checking API tokens the same way
(`keel.serving.auth`). It sits at the top of keel's layers with the CLI and `keel.Project`.

    from keel.server import create_app
    from keel.web.server import run_in_thread

    app, serving = create_app(project, log=open_prediction_log(project), ui=True)
    with run_in_thread(app) as url:
        ...  # POST {url}/predict, GET {url}/api/v1/models, GET {url}/ui/
"""

from __future__ import annotations

import math
import os
import signal
import socket
import tempfile
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute, Mount

from keel.errors import ConfigError, DependencyMissing
from keel.serving.app import Service, ServingApp
from keel.serving.app import create_app as create_serving_app
from keel.serving.listen import GrpcListen
from keel.web.api import api_mount
from keel.web.server import Listen, serve_until_stopped, serve_workers
from keel.web.ui import create_ui

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from keel.predlog.log import PredictionLog
    from keel.workspace import Workspace

__all__ = [
    "GrpcListen",
    "Listen",
    "WorkerOptions",
    "available_cores",
    "check_grpc_port",
    "create_app",
    "create_ui_app",
    "open_log",
    "serve_project_workers",
    "serve_until_stopped",
    "worker_app",
]


def open_log(project: Workspace) -> PredictionLog:
    """The project's prediction log as `keel serve` writes it: rows the store cannot take
    are spilled to the dead-letter file, which raises an alert."""
    from keel.predlog.deadletter import dead_letter_alert
    from keel.predlog.writer import open_prediction_log

    return open_prediction_log(project, on_dead_letter=dead_letter_alert(project))


def create_app(
    project: Workspace,
    *,
    log: PredictionLog | None = None,
    api: bool = True,
    ui: bool = False,
    grpc: GrpcListen | None = None,
) -> tuple[Starlette, ServingApp]:
    """`keel serve`'s app and its serving state (the lifespan starts and stops both):
    inference, with the registry API at /api/v1 unless `api` is false, the web UI at /ui if
    `ui` is true, and the Open Inference Protocol over gRPC where `grpc` says (the `grpc`
    extra)."""
    mounts: list[BaseRoute] = []
    if api:
        mounts.append(api_mount(project))
    if ui:
        mounts.append(Mount("/ui", app=create_ui(project)))
    services: list[Service] = []
    if grpc is not None:
        services.append(_grpc_service(grpc))
    return create_serving_app(project, log=log, mounts=mounts, services=services)


def _grpc_service(listen: GrpcListen) -> Service:
    _require_grpc()
    from keel.serving.grpc import grpc_service

    return grpc_service(listen)


def _require_grpc() -> None:
    try:
        import keel.serving.grpc  # noqa: F401 - the import is the check
    except ImportError as exc:
        raise DependencyMissing("grpcio", "grpc", "serving gRPC (--grpc-port)") from exc


def check_grpc_port(listen: GrpcListen) -> None:
    """`ConfigError` naming --grpc-port if the port is taken (checked before workers start,
    which bind it together), `DependencyMissing` without the grpc extra."""
    _require_grpc()
    family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((listen.host, listen.port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen for gRPC on {listen.host}:{listen.port} (--grpc-port): "
                f"{exc.strerror or exc}",
                problems=[("grpc-port", "must be free to listen on")],
            ) from exc


def create_ui_app(project: Workspace) -> Starlette:
    """`keel ui`'s app: the web UI alone (with its own sign-in and API calls)."""
    return create_ui(project)


def available_cores() -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup CPU quota
    (a container's `resources.limits.cpu`), which `os.cpu_count()` does not see."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cores = cores or os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


@dataclass(frozen=True)
class WorkerOptions:
    """What each `keel serve --workers` process needs to build its app (pickled to it)."""

    project_dir: str
    env: dict[str, str] = field(default_factory=dict)
    api: bool = True
    ui: bool = False
    #: Seconds the lifespan's shutdown may take (what serving.shutdown_timeout leaves after
    #: draining requests).
    stop_budget: float | None = None
    #: The gRPC endpoint, bound by every worker (SO_REUSEPORT).
    grpc: GrpcListen | None = None


def worker_app(options: WorkerOptions) -> Starlette:
    """In a worker process: the project opened anew, its own prediction log (its own spool
    files), and `keel serve`'s app. The worker stops (SIGTERM, so it drains) when the
    process that started it dies, however it died."""
    from keel.workspace import Workspace

    _stop_with_parent()
    project = Workspace.open(options.project_dir, env=options.env)
    app, serving = create_app(
        project, log=open_log(project), api=options.api, ui=options.ui, grpc=options.grpc
    )
    serving.stop_budget = options.stop_budget
    return app


def serve_project_workers(options: WorkerOptions, listen: Listen, *, workers: int) -> None:
    """`keel serve --workers N`: `workers` processes, each running `worker_app(options)`,
    on one socket until SIGTERM or Ctrl-C. They count their Prometheus series in a folder
    of their own (`PROMETHEUS_MULTIPROC_DIR`), new at each start so that no stale count
    survives a restart, and removed when they have all stopped."""
    import shutil

    from keel.serving.metrics import MULTIPROCESS_ENV

    folder = tempfile.mkdtemp(prefix="keel-metrics-")
    try:
        serve_workers(
            partial(worker_app, options), listen, workers=workers, env={MULTIPROCESS_ENV: folder}
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _stop_with_parent() -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the supervisor's own signals still work
        pass
