"""The web UI: server-rendered pages for the people who operate models.

    GET  /                                   models, their aliases, open alerts, health
    GET  /models/{name}                      versions, release history, pending requests
    GET  /models/{name}/versions/{version}   lineage graph, latest gate evaluation
    GET  /models/{name}/monitoring           drift by feature, performance, distributions
    GET  /predictions?id=...                 the chain behind one logged prediction
    GET  /alerts                             open alerts with their owners
    GET  /requests                           pending and recent release requests
    GET  /requests/{id}                      one request: its gates, decisions, buttons
    POST /requests/{id}/approve|reject       a decision by the signed-in user (form)
    GET  /scorecard                          the project's maturity scorecard
    GET  /signin, POST /signin, POST /signout
    GET  /static/...                         the stylesheet (shipped in the package, no CDN)

Pages are Jinja2 templates with autoescape on; no JavaScript. Reading needs no sign-in, as
on the command line; deciding a request does: an API token, checked at every call
(`keel.web.session`), and the release rules of `keel approve` (the requester never decides
their own request; roles as the policy says). Mounted under a prefix (`keel serve --ui`
mounts it at /ui) every link carries the prefix. A keel error is a page with the status of
`keel.errors.ERROR_CODES`, as on the API: `NotFound` a 404, `ConfigError` a 400,
`PermissionDenied` a 403, `Conflict` a 409.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from jinja2 import Environment, PackageLoader
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from keel.domain.identity import require
from keel.errors import KeelError, PermissionDenied, error_code
from keel.reports.html import environment
from keel.serving.deadline import BodyDeadline
from keel.web import pages
from keel.web.api import check_parameters
from keel.web.session import Session, Sessions, check_origin, read_form, safe_next

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["create_ui"]

#: Every page: never cached (it shows live state), and nothing but this origin's own assets;
#: inline styles only for the charts' colours; forms post only here; never framed.
_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

logger = logging.getLogger(__name__)

Page = Callable[["Workspace", Request], tuple[str, pages.Context]]
Action = Callable[[Request, Session], Awaitable[Response]]


def create_ui(project: Workspace) -> Starlette:
    """A Starlette app serving the UI; the caller keeps and closes `project`."""
    # Open the store now, in one thread: the first use from the thread pool would race.
    project.metadata  # noqa: B018
    # keel's one template environment: the UI's pages first, then the shared pieces.
    env = environment(PackageLoader("keel.web", "templates"))
    env.filters["when"] = pages.fmt_when
    env.filters["num"] = pages.fmt_number
    env.filters["flat"] = pages.flat_pairs
    env.globals["project_name"] = project.spec.name
    ui = _Ui(project, env)
    routes: list[BaseRoute] = [
        ui.page("/", pages.home),
        ui.page("/models/{name}", pages.model_page),
        ui.page("/models/{name}/versions/{version}", pages.version_page),
        ui.page("/models/{name}/monitoring", pages.monitoring_page),
        ui.page("/predictions", pages.prediction_page),
        ui.page("/alerts", pages.alerts_page),
        ui.page("/requests", pages.requests_page),
        ui.page("/requests/{id}", pages.request_page),
        ui.page("/scorecard", pages.scorecard_page),
        Route("/signin", ui.signin_form, methods=["GET"]),
        ui.action("/signin", ui.signin, signed_in=False),
        ui.action("/signout", ui.signout),
        ui.action("/requests/{id}/approve", ui.decide),
        ui.action("/requests/{id}/reject", ui.decide),
        Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static"),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        context = {"status": status, "message": f"{request.url.path}: no such page"}
        return ui.render(request, Session(None), "error.html", context, status)

    # `keel ui` on its own: half-sent form posts must not hold connections open.
    deadline = Middleware(BodyDeadline, seconds=project.spec.serving.body_timeout.total_seconds())
    return Starlette(
        routes=routes, exception_handlers={HTTPException: not_found}, middleware=[deadline]
    )


class _Ui:
    def __init__(self, project: Workspace, env: Environment) -> None:
        self.project = project
        self.env = env
        self.sessions = Sessions(project)

    # --- rendering ------------------------------------------------------------------------

    def render(
        self,
        request: Request,
        session: Session,
        template: str,
        context: pages.Context,
        status: int = 200,
    ) -> Response:
        base = _base(request)
        full = {
            "base": base,
            "path": request.url.path[len(base) :] or "/",
            "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            "user": session.actor,
            "csrf": session.csrf,
            **context,
        }
        text = self.env.get_template(template).render(full)
        return HTMLResponse(text, status_code=status, headers=_HEADERS)

    def error(self, request: Request, session: Session, error: KeelError) -> Response:
        status = error_code(error).http_status
        context = {"status": status, "message": error.message, "hint": error.hint}
        return self.render(request, session, "error.html", context, status)

    # --- routes -----------------------------------------------------------------------------

    def page(self, path: str, build: Page) -> Route:
        async def endpoint(request: Request) -> Response:
            session = await self.sessions.read(request)
            try:
                check_parameters(request)
                template, context = await run_in_threadpool(build, self.project, request)
            except KeelError as error:
                return self.error(request, session, error)
            except Exception:  # the last line of defence: logged here, no traceback in the page
                logger.exception("internal error in GET %s", request.url.path)
                context = {"status": 500, "message": "internal error: the page could not be built"}
                return self.render(request, session, "error.html", context, 500)
            return self.render(request, session, template, context)

        return Route(path, endpoint, methods=["GET"])

    def action(self, path: str, act: Action, *, signed_in: bool = True) -> Route:
        """A form post from this server's own pages (`check_origin`), CSRF-checked when
        `signed_in`; answers with a redirect (303)."""

        async def endpoint(request: Request) -> Response:
            session = await self.sessions.read(request)
            try:
                check_origin(request)  # before anything, /signin too (login CSRF)
                if signed_in and session.actor is None:
                    raise PermissionDenied(
                        "sign in first: deciding a request needs an API token",
                        hint="an admin creates one with `keel tokens create USER`",
                    )
                return await act(request, session)
            except KeelError as error:
                return self.error(request, session, error)
            except ClientDisconnect:  # gone (or too slow: BodyDeadline answers 408)
                return Response(status_code=499)
            except Exception:
                logger.exception("internal error in POST %s", request.url.path)
                context = {"status": 500, "message": "internal error: nothing was changed"}
                return self.render(request, session, "error.html", context, 500)

        return Route(path, endpoint, methods=["POST"])

    async def signin_form(self, request: Request) -> Response:
        session = await self.sessions.read(request)
        wanted = safe_next(request.query_params.get("next"), _base(request))
        return self.render(request, session, "signin.html", {"next": wanted})

    async def signin(self, request: Request, session: Session) -> Response:
        form = await read_form(request)
        token = form.get("token", "").strip()
        wanted = safe_next(form.get("next"), _base(request))
        try:
            actor = await self.sessions.authenticate(token)
        except PermissionDenied:
            context = {"next": wanted, "failed": True}
            return self.render(request, Session(None), "signin.html", context, 401)
        logger.info("%s signed in to the UI", actor.name)
        response = RedirectResponse(wanted, status_code=303)
        self.sessions.sign_in(response, request, token, _base(request))
        return response

    async def signout(self, request: Request, session: Session) -> Response:
        form = await read_form(request)
        self.sessions.check_csrf(request, form.get("csrf", ""))
        response = RedirectResponse(_base(request) + "/", status_code=303)
        self.sessions.sign_out(response, _base(request))
        return response

    async def decide(self, request: Request, session: Session) -> Response:
        from keel.verbs import approve, reject

        form = await read_form(request)
        self.sessions.check_csrf(request, form.get("csrf", ""))
        assert session.actor is not None  # `action` refuses a signed-out post
        require(session.actor, "approve")
        request_id = request.path_params["id"]
        decision = approve if request.url.path.endswith("/approve") else reject
        comment = form.get("comment", "").strip() or None
        await run_in_threadpool(
            decision, self.project, request_id, actor=session.actor, comment=comment
        )
        done = "approved" if decision is approve else "rejected"
        return RedirectResponse(
            f"{_base(request)}/requests/{request_id}?done={done}", status_code=303
        )


def _base(request: Request) -> str:
    """The prefix the UI is mounted under ('' at the root)."""
    return str(request.scope.get("root_path", "")).rstrip("/")
