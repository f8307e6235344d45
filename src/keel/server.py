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

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute, Mount

from keel.serving.app import ServingApp
from keel.serving.app import create_app as create_serving_app
from keel.web.api import api_mount
from keel.web.server import serve_until_stopped
from keel.web.ui import create_ui

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from keel.predlog.log import PredictionLog
    from keel.workspace import Workspace

__all__ = ["create_app", "create_ui_app", "open_log", "serve_until_stopped"]


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
) -> tuple[Starlette, ServingApp]:
    """`keel serve`'s app and its serving state (the lifespan starts and stops both):
    inference, with the registry API at /api/v1 unless `api` is false, and the web UI at
    /ui if `ui` is true."""
    mounts: list[BaseRoute] = []
    if api:
        mounts.append(api_mount(project))
    if ui:
        mounts.append(Mount("/ui", app=create_ui(project)))
    return create_serving_app(project, log=log, mounts=mounts)


def create_ui_app(project: Workspace) -> Starlette:
    """`keel ui`'s app: the web UI alone (with its own sign-in and API calls)."""
    return create_ui(project)
