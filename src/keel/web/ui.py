"""The web UI: server-rendered pages for the people who operate models (read-only for now).

    GET /                                  models, their aliases, open alerts, health
    GET /models/{name}                     versions, release history, pending requests
    GET /models/{name}/versions/{version}  lineage graph, latest gate evaluation
    GET /predictions?id=...                the chain behind one logged prediction
    GET /alerts                            open alerts with their owners
    GET /static/...                        the stylesheet (shipped in the package, no CDN)

Pages are Jinja2 templates with autoescape on; no JavaScript. Each page's data is read in
the thread pool (store calls block). keel's errors map to statuses here: `NotFound` is a
404 page, `ConfigError` a 400 page.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from keel.domain.monitoring import SEVERITIES
from keel.errors import ConfigError, KeelError, NotFound

if TYPE_CHECKING:
    from keel.project import Project

__all__ = ["create_ui"]

#: Aliases in the order an operator reads them; others follow by name.
ALIAS_ORDER: Final = ("production", "canary", "candidate", "shadow")
#: Audit events that move an alias: the release history.
RELEASE_EVENTS: Final = [
    "model.registered",
    "alias.moved",
    "alias.rolled_back",
    "alias.removed",
    "canary.promoted",
    "canary.rolled_back",
    "release.requested",
    "release.approved",
    "release.rejected",
]
#: Alerts one page lists at most.
MAX_ALERTS: Final = 500
#: Release history entries the model page lists at most (newest first).
MAX_HISTORY: Final = 200

_SEVERITY_RANK: Final = {severity: i for i, severity in enumerate(SEVERITIES)}

logger = logging.getLogger(__name__)

Context = dict[str, Any]
Page = Callable[["Project", Request], tuple[str, Context]]


def create_ui(project: Project) -> Starlette:
    """A Starlette app serving the UI; the caller keeps and closes `project`."""
    # Open the store now, in one thread: the first use from the thread pool would race.
    project.metadata  # noqa: B018
    env = Environment(
        loader=PackageLoader("keel.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["num"] = _num
    env.globals["project_name"] = project.spec.name
    routes: list[BaseRoute] = [
        _page(project, env, "/", _home),
        _page(project, env, "/models/{name}", _model),
        _page(project, env, "/models/{name}/versions/{version}", _version),
        _page(project, env, "/predictions", _prediction),
        _page(project, env, "/alerts", _alerts),
        Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static"),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        message = f"{request.url.path}: no such page"
        return _html(env, "error.html", {"status": status, "message": message}, status)

    return Starlette(routes=routes, exception_handlers={HTTPException: not_found})


def _page(project: Project, env: Environment, path: str, page: Page) -> Route:
    async def endpoint(request: Request) -> Response:
        try:
            template, context = await run_in_threadpool(page, project, request)
        except NotFound as error:
            return _error(env, 404, error)
        except ConfigError as error:
            return _error(env, 400, error)
        except KeelError as error:
            return _error(env, 500, error)
        except Exception:  # the last line of defence: logged here, no traceback in the page
            logger.exception("internal error in GET %s", request.url.path)
            context = {"status": 500, "message": "internal error: the page could not be built"}
            return _html(env, "error.html", context, 500)
        return _html(env, template, {"path": request.url.path, **context})

    return Route(path, endpoint, methods=["GET"])


def _error(env: Environment, status: int, error: KeelError) -> Response:
    context = {"status": status, "message": error.message, "hint": error.hint}
    return _html(env, "error.html", context, status)


def _html(env: Environment, template: str, context: Context, status: int = 200) -> Response:
    text = env.get_template(template).render(context)
    return HTMLResponse(text, status_code=status, headers={"Cache-Control": "no-store"})


# --- formatting ---------------------------------------------------------------------------


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "–"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _num(value: object, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}"


def _alias_key(alias: str) -> tuple[int, str]:
    order = ALIAS_ORDER.index(alias) if alias in ALIAS_ORDER else len(ALIAS_ORDER)
    return order, alias


def _version_number(text: str) -> int:
    if not text.isdigit() or len(text) > 9:
        raise NotFound(f"{text!r} is not a version number", hint="versions are 1, 2, 3, ...")
    return int(text)


# --- pages --------------------------------------------------------------------------------


def _home(project: Project, request: Request) -> tuple[str, Context]:
    metadata = project.metadata
    open_alerts = metadata.monitoring.alerts(state="open", limit=MAX_ALERTS)
    by_model: dict[str, Counter[str]] = {}
    for alert in open_alerts:
        by_model.setdefault(alert.model, Counter())[alert.severity] += 1
    latest = metadata.monitoring.latest_metrics()
    models = []
    for model in metadata.models.list_models():
        mine = [m for m in latest if m.model == model.name]
        production = next((a.version for a in model.aliases if a.name == "production"), None)
        performance = [m for m in mine if m.signal == "performance" and m.value is not None]
        # The production holder's own number first; another version's, named as such, else.
        performance.sort(key=lambda m: (m.version == production, m.window_end))
        counts = by_model.get(model.name, Counter())
        # Alerts come newest first: the newest of the most severe.
        worst = max(
            (a for a in open_alerts if a.model == model.name),
            key=lambda a: _SEVERITY_RANK[a.severity],
            default=None,
        )
        models.append(
            {
                "name": model.name,
                "latest_version": model.latest_version,
                "versions": model.version_count,
                "aliases": sorted(
                    ((a.name, a.version) for a in model.aliases), key=lambda p: _alias_key(p[0])
                ),
                "alerts": [(s, counts[s]) for s in reversed(SEVERITIES) if counts[s]],
                "last_monitored": max(
                    (m.recorded_at for m in mine if m.recorded_at is not None), default=None
                ),
                "performance": performance[-1] if performance else None,
                "production": production,
                "worst_alert": worst,
            }
        )
    return "home.html", {"models": models, "open_alerts": len(open_alerts)}


def _model(project: Project, request: Request) -> tuple[str, Context]:
    from keel.monitoring.charts import REFERENCE, LineSeries, line_chart

    name = request.path_params["name"]
    metadata = project.metadata
    versions = metadata.models.versions(name)  # NotFound for an unknown model
    aliases = metadata.models.aliases(name)
    held: dict[int, list[str]] = {}
    for alias in sorted(aliases, key=lambda a: _alias_key(a.name)):
        held.setdefault(alias.version, []).append(alias.name)
    metric_names = sorted({key for v in versions for key in v.metrics})
    history = metadata.audit.events(
        model=name, kinds=RELEASE_EVENTS, newest_first=True, limit=MAX_HISTORY
    )
    pending = metadata.releases.requests(status="pending", model=name)
    performance = metadata.monitoring.metrics(name, signal="performance")
    chart = None
    if performance:
        labels = [m.window_end.strftime("%m-%d %H:%M") for m in performance]
        series = LineSeries("performance", [m.value for m in performance], REFERENCE)
        # line_chart escapes every text it draws: its SVG is safe to insert as is.
        chart = Markup(line_chart(labels, [series], label="performance over time"))  # noqa: S704
    return "model.html", {
        "name": name,
        "aliases": sorted(aliases, key=lambda a: _alias_key(a.name)),
        "versions": [(v, held.get(v.version, [])) for v in reversed(versions)],
        "metric_names": metric_names,
        "history": history,
        "pending": pending,
        "performance_chart": chart,
        "performance": performance[-12:],
    }


def _version(project: Project, request: Request) -> tuple[str, Context]:
    from keel.lineage.chain import model_lineage

    name = request.path_params["name"]
    number = _version_number(request.path_params["version"])
    metadata = project.metadata
    version = metadata.models.get(name, number)
    chain = model_lineage(project, version.ref)
    evaluations = metadata.audit.events(model=name, kinds=["gates.evaluated"], newest_first=True)
    latest = next((e for e in evaluations if e.version == number), None)
    gates = (
        []
        if latest is None or latest.subject is None
        else (metadata.releases.evaluation(latest.subject))
    )
    return "version.html", {
        "name": name,
        "version": version,
        "chain": chain,
        "evaluation": latest,
        "gates": gates,
    }


def _prediction(project: Project, request: Request) -> tuple[str, Context]:
    from keel.serving.explain import explain_prediction

    wanted = request.query_params.get("id", "").strip()
    if not wanted:
        return "prediction.html", {"wanted": "", "chain": None}
    chain = explain_prediction(project, wanted)
    return "prediction.html", {"wanted": wanted, "chain": chain, "rows": _flatten(chain)}


def _alerts(project: Project, request: Request) -> tuple[str, Context]:
    open_alerts = project.metadata.monitoring.alerts(state="open", limit=MAX_ALERTS)
    rank = {severity: i for i, severity in enumerate(reversed(SEVERITIES))}
    open_alerts.sort(key=lambda a: (rank.get(a.severity, 9), a.model, a.opened_at))
    return "alerts.html", {"alerts": open_alerts}


def _flatten(document: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """A nested document as (dotted key, value) rows, lists of scalars joined."""
    rows: list[tuple[str, str]] = []
    for key, value in document.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.extend(_flatten(value, path + "."))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for i, item in enumerate(value):
                rows.extend(_flatten(item, f"{path}[{i}]."))
        elif isinstance(value, list):
            rows.append((path, ", ".join(str(v) for v in value) or "–"))
        else:
            rows.append((path, "–" if value is None else str(value)))
    return rows
