"""The HTTP API: JSON in and out under `/api/v1`, every call made with an API token.

    GET  /api/v1/whoami
    GET  /api/v1/models
    GET  /api/v1/models/{name}                                versions and aliases
    GET  /api/v1/models/{name}/versions/{version}
    GET  /api/v1/requests?status=pending&model=M&limit=N
    GET  /api/v1/requests/{id}
    GET  /api/v1/audit-log?model=M&after=N&limit=N
    GET  /api/v1/audit-log/verify

    action    POST                                              body
    promote   /api/v1/models/{name}/versions/{version}/promote  {"alias", "reason"?, "eval_data"?}
    approve   /api/v1/requests/{id}/approve                     {"comment"?}
    approve   /api/v1/requests/{id}/reject                      {"comment"?}
    rollback  /api/v1/models/{name}/rollback                    {"alias"?, "reason"}
    label     /api/v1/feedback                                  {"feedback": [...], "model"?}

A call carries `Authorization: Bearer keel_<id>_<secret>`; without a valid token it is 401
with `WWW-Authenticate: Bearer` (`keel.serving.auth`, shared with the serving port's label
route). A body is JSON, declared `Content-Type: application/json`, or 415: the form no
other site's page can send without asking first. The token's user is who acts: its roles
(read at every call) decide what it may change (403 names the roles that may), the audit
log names it, and the release policy's separation of duties holds for it as on the command
line.

Documents have the shapes of the CLI's `--json` output. Errors are
`{"ok": false, "error": {"code", "message", "hint", "problems"?}}`, where `problems` lists
`{"field", "rule"}`. Statuses come from `keel.errors.ERROR_CODES`, as the CLI's exit codes
do. A promotion answers 200 when the alias moved, 202 when it waits for approval and 422
when the gates refused it, always with the whole result.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from keel.domain.identity import Action, Actor, require
from keel.domain.model import VERSION_RULE, parse_version_number
from keel.errors import ConfigError, KeelError, error_code
from keel.serving.auth import Refusal, authenticate, has_body, require_json
from keel.serving.codec import BadRequest, parse_json
from keel.web.openapi import api_openapi_document

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["API_PREFIX", "MAX_BODY_BYTES", "api_mount", "check_parameters", "create_api"]

API_PREFIX: Final = "/api/v1"
#: The largest request body accepted (413 beyond): bodies are a few short strings.
MAX_BODY_BYTES: Final = 64 * 1024
#: Audit events one call returns at most; page on with `after`.
MAX_EVENTS: Final = 1_000

_OUTCOME_STATUS: Final = {"promoted": 200, "pending": 202, "refused": 422}
#: A number in a path or query: ASCII digits, small enough for any integer column.
_NUMBER: Final = re.compile(r"[0-9]{1,9}")

logger = logging.getLogger(__name__)

Document = dict[str, Any]
#: A handler's answer: a document (200), or a status and a document.
Reply = Document | tuple[int, Document]


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated, authorised call, as a handler sees it."""

    project: Workspace
    actor: Actor
    path: Mapping[str, str]
    query: Mapping[str, str]
    body: Mapping[str, str | None]
    document: object = None  # the whole JSON body, for routes that take one


Handler = Callable[[Call], Reply]


def create_api(project: Workspace) -> Starlette:
    """A Starlette app serving the API at `/api/v1`; the caller keeps and closes `project`."""
    return Starlette(routes=[api_mount(project)], exception_handlers={HTTPException: _http_error})


def api_mount(project: Workspace) -> Mount:
    """The API as a `Mount` at `/api/v1`, to serve inside a larger app (the web UI)."""
    # Open the store now, in one thread: the first use from the thread pool would race.
    project.metadata  # noqa: B018
    routes: list[BaseRoute] = [
        _route(project, "/whoami", _whoami, "read"),
        _route(project, "/models", _models, "read"),
        _route(project, "/models/{name}", _model, "read"),
        _route(project, "/models/{name}/versions/{version}", _version, "read"),
        _route(
            project,
            "/models/{name}/versions/{version}/promote",
            _promote,
            "promote",
            body={"alias": True, "reason": False, "eval_data": False},
        ),
        _route(
            project,
            "/models/{name}/rollback",
            _rollback,
            "rollback",
            body={"alias": False, "reason": True},
        ),
        _route(project, "/requests", _requests, "read"),
        _route(project, "/requests/{id}", _request, "read"),
        _route(project, "/requests/{id}/approve", _approve, "approve", body={"comment": False}),
        _route(project, "/requests/{id}/reject", _reject, "approve", body={"comment": False}),
        _route(project, "/audit-log", _audit_log, "read"),
        _route(project, "/audit-log/verify", _audit_verify, "read"),
        _route(
            project,
            "/feedback",
            _feedback,
            "label",
            json_body=project.spec.serving.max_request_bytes,
        ),
    ]
    document = api_openapi_document(
        max_body_bytes=MAX_BODY_BYTES,
        max_feedback_bytes=project.spec.serving.max_request_bytes,
        max_rows=project.spec.serving.max_rows,
    )

    async def openapi(request: Request) -> Response:
        return _json(200, document)  # public: it describes the API, and holds no data

    routes.append(Route("/openapi.json", openapi, methods=["GET"]))
    api = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    return Mount(API_PREFIX, app=api)


# --- the machinery every endpoint shares --------------------------------------------------


def _route(
    project: Workspace,
    path: str,
    handler: Handler,
    action: Action,
    *,
    body: Mapping[str, bool] | None = None,
    json_body: int | None = None,
) -> Route:
    """A route running `handler` in the thread pool (store calls block) for a caller with
    a valid token and a role allowed `action`. `body` names the JSON body's string fields
    (True: required); `json_body` takes the whole JSON body instead, of at most that many
    bytes. A route with a body is a POST."""
    limit = MAX_BODY_BYTES if json_body is None else json_body

    async def endpoint(request: Request) -> Response:
        try:
            if body is not None or json_body is not None:
                _check_declared_length(request, limit)
                if has_body(request):
                    require_json(request)
            check_parameters(request)
            actor = await authenticate(project, request)
            require(actor, action)
            fields = _fields(await _read_json(request), body) if body is not None else {}
            whole = await _read_json(request, limit) if json_body is not None else None
            call = Call(project, actor, request.path_params, request.query_params, fields, whole)
            reply = await run_in_threadpool(handler, call)
        except Refusal as refusal:
            document = _error_document(refusal.code, refusal.message, refusal.hint)
            return _json(refusal.status, document, refusal.headers)
        except KeelError as error:
            return _json(*_keel_error(error))
        except ClientDisconnect:  # gone (or too slow: BodyDeadline answers 408)
            return Response(status_code=499)
        except Exception:  # the last line of defence: logged here, no traceback to callers
            logger.exception("internal error in %s %s", request.method, request.url.path)
            document = _error_document(
                "internal_error", "internal error: the server could not complete the call"
            )
            return _json(500, document)
        status, document = reply if isinstance(reply, tuple) else (200, reply)
        return _json(status, document)

    posted = body is not None or json_body is not None
    return Route(path, endpoint, methods=["POST"] if posted else ["GET"])


def check_parameters(request: Request) -> None:
    """`ConfigError` for a path or query parameter holding a NUL character: no store keeps
    one in text (PostgreSQL refuses it), so it could only fail deeper down."""
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        if "\x00" in str(value):
            raise ConfigError(
                f"parameter {name} must not contain NUL characters (%00)",
                problems=[(name, "text without NUL characters")],
            )


def _check_declared_length(request: Request, limit: int = MAX_BODY_BYTES) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)


async def _read_json(request: Request, limit: int = MAX_BODY_BYTES) -> object:
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise _too_large(limit)
    if not raw.strip():
        return {}
    try:
        return parse_json(bytes(raw))
    except BadRequest as exc:
        raise ConfigError(
            f"the request body is not valid JSON: {exc.message}",
            problems=[(p.field, p.rule) for p in exc.problems] or [("body", "valid JSON")],
        ) from None


def _fields(body: object, spec: Mapping[str, bool]) -> dict[str, str | None]:
    """The body's string fields, or `ConfigError` naming every field that is wrong."""
    if not isinstance(body, dict):
        raise ConfigError(
            f"the request body must be a JSON object, got {type(body).__name__}",
            problems=[("body", "must be a JSON object")],
        )
    expected = ", ".join(spec) or "none"
    problems = [
        (str(name), f"unknown field; expected one of {expected}")
        for name in body
        if name not in spec
    ]
    fields: dict[str, str | None] = {}
    for name, required in spec.items():
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            problems.append((name, f"must be a string, got {type(value).__name__}"))
        elif value is None or not value.strip():
            if required:
                problems.append((name, "is required: a non-empty string"))
            fields[name] = None
        else:
            fields[name] = value.strip()
    if problems:
        named = ", ".join(name for name, _ in problems)
        raise ConfigError(f"the request body is invalid: {named}", problems=problems)
    return fields


def _too_large(limit: int = MAX_BODY_BYTES) -> Refusal:
    return Refusal(413, "body_too_large", f"the request body is larger than {limit} bytes")


def _keel_error(error: KeelError) -> tuple[int, Document]:
    row = error_code(error)
    problems = error.problems if isinstance(error, ConfigError) else None
    return row.http_status, _error_document(row.code, error.message, error.hint, problems)


def _error_document(
    code: str,
    message: str,
    hint: str | None = None,
    problems: list[tuple[str, str]] | None = None,
) -> Document:
    error: Document = {"code": code, "message": message, "hint": hint}
    if problems:
        error["problems"] = [{"field": field, "rule": rule} for field, rule in problems]
    return {"ok": False, "error": error}


def _json(status: int, document: Document, headers: Mapping[str, str] | None = None) -> Response:
    # Answers hold what a token may read: no cache should keep them.
    merged = {"Cache-Control": "no-store", **(headers or {})}
    return JSONResponse(document, status_code=status, headers=merged)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths (404) and wrong methods (405), as JSON like every other answer."""
    # Registered for HTTPException only; Starlette types handlers for any exception.
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    headers = exc.headers if isinstance(exc, HTTPException) else None
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    reason = exc.detail if isinstance(exc, HTTPException) else "internal error"
    message = f"{request.method} {request.url.path}: {reason}"
    return _json(status, _error_document(code, message), headers)


# --- reading ------------------------------------------------------------------------------


def _whoami(call: Call) -> Reply:
    actor = call.actor
    return {
        "ok": True,
        "user": {"name": actor.name, "roles": sorted(actor.roles), "via": actor.via},
    }


def _models(call: Call) -> Reply:
    from keel.release.documents import models_document

    return {"ok": True, "models": models_document(call.project)}


def _model(call: Call) -> Reply:
    from keel.release.documents import model_document

    return {"ok": True, "model": model_document(call.project, call.path["name"])}


def _version(call: Call) -> Reply:
    from keel.release.documents import version_document

    number = _version_number(call.path["version"])
    version = call.project.metadata.models.get(call.path["name"], number)
    return {"ok": True, "version": version_document(call.project, version)}


def _requests(call: Call) -> Reply:
    from keel.verbs.requests import requests

    status = call.query.get("status") or None
    model = call.query.get("model") or None
    limit = _integer(call.query, "limit", minimum=1)
    return {"ok": True, **requests(call.project, status=status, model=model, limit=limit).to_dict()}


def _request(call: Call) -> Reply:
    from keel.verbs.requests import request

    # The document this endpoint has always answered with: the request, without its gates.
    return {"ok": True, "request": request(call.project, call.path["id"]).request.to_dict()}


def _audit_log(call: Call) -> Reply:
    after = _integer(call.query, "after", minimum=0) or 0
    limit = min(_integer(call.query, "limit", minimum=1) or MAX_EVENTS, MAX_EVENTS)
    events = call.project.metadata.audit.events(
        model=call.query.get("model") or None, after=after, limit=limit
    )
    return {
        "ok": True,
        "events": [e.to_dict() for e in events],
        # Page on with ?after=next_after while `events` comes back full.
        "next_after": events[-1].seq if events else after,
    }


def _audit_verify(call: Call) -> Reply:
    from keel.verbs.audit import audit_verify

    # The chain and its newest signed checkpoint, as `keel audit-log verify` checks them; a
    # read writes no checkpoint, and without a public key here the chain alone is checked.
    return audit_verify(call.project, checkpoint=False, require_key=False).to_dict()


# --- changing -----------------------------------------------------------------------------


def _promote(call: Call) -> Reply:
    from keel.verbs.promote import promote

    name, number = call.path["name"], _version_number(call.path["version"])
    result = promote(
        call.project,
        f"{name}@{number}",
        _required(call, "alias"),
        actor=call.actor,
        reason=call.body["reason"],
        eval_data=call.body["eval_data"],  # a dataset version ref, never a server path
    )
    return _OUTCOME_STATUS.get(result.outcome, 200), _result(result.to_dict())


def _approve(call: Call) -> Reply:
    from keel.verbs.approve import approve

    result = approve(call.project, call.path["id"], actor=call.actor, comment=call.body["comment"])
    return _result(result.to_dict())


def _reject(call: Call) -> Reply:
    from keel.verbs.reject import reject

    result = reject(call.project, call.path["id"], actor=call.actor, comment=call.body["comment"])
    return _result(result.to_dict())


def _rollback(call: Call) -> Reply:
    from keel.verbs.rollback import rollback

    result = rollback(
        call.project,
        call.path["name"],
        alias=call.body["alias"] or "production",
        actor=call.actor,
        reason=_required(call, "reason"),
    )
    return _result(result.to_dict())


def _feedback(call: Call) -> Reply:
    from keel.verbs.feedback import feedback

    # The verb checks the body's shape (a JSON object with a `feedback` list) and names
    # every bad field; the answer is what was recorded, without the performance tables.
    body = cast("Mapping[str, Any]", call.document)
    report = feedback(
        call.project, body, actor=call.actor, via="POST /api/v1/feedback", performance=False
    )
    return {"ok": True, **report.feedback.to_dict()}


def _result(document: Document) -> Document:
    return {"ok": document.get("outcome") != "refused", **document}


def _required(call: Call, name: str) -> str:
    value = call.body[name]
    if value is None:  # the route declares the field required, so `_fields` refused it
        raise ConfigError(f"{name} is required", problems=[(name, "is required")])
    return value


def _version_number(text: str) -> int:
    number = parse_version_number(text)
    if number is None:
        raise ConfigError(
            f"model version must be {VERSION_RULE}, got {text!r}",
            problems=[("version", f"must be {VERSION_RULE}")],
        )
    return number


def _integer(query: Mapping[str, str], name: str, *, minimum: int) -> int | None:
    text = query.get(name)
    if text is None or text == "":
        return None
    if _NUMBER.fullmatch(text) is None or int(text) < minimum:
        raise ConfigError(
            f"query parameter {name} must be an integer >= {minimum}, got {text!r}",
            problems=[(name, f"must be an integer >= {minimum}")],
        )
    return int(text)
