"""The OpenAPI 3.1 document of the HTTP API (`GET /api/v1/openapi.json`).

Every route of `keel.web.api`, its parameters and body, the bearer token it needs, the
documents it answers with and every error status with the API's error shape
(`{"ok": false, "error": {"code", "message", "hint", "problems"?}}`). Like the serving
document, it allows nothing the API refuses for its shape, and `tests/web/test_api_fuzz.py`
holds the API to it with schemathesis.
"""

from __future__ import annotations

from typing import Any, Final

from keel.domain.model import MAX_VERSION, MODEL_NAME_PATTERN
from keel.domain.release import REQUEST_STATUSES
from keel.serving.openapi import feedback_schema
from keel.version import __version__

__all__ = ["api_openapi_document"]

_NAME: Final = {"type": "string", "pattern": MODEL_NAME_PATTERN}
_ALIAS: Final = {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,62}$"}
#: Text a store can keep: no NUL characters (PostgreSQL refuses them).
_TEXT: Final = {"type": "string", "pattern": "^[^\\u0000]*$"}
#: Numbers in a query: at most 9 ASCII digits.
_QUERY_MAX: Final = 999_999_999

_ERROR: Final = {
    "type": "object",
    "properties": {
        "ok": {"const": False},
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "hint": {"type": ["string", "null"]},
                "problems": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"field": {"type": "string"}, "rule": {"type": "string"}},
                        "required": ["field", "rule"],
                    },
                },
            },
            "required": ["code", "message"],
        },
    },
    "required": ["ok", "error"],
}
_ERRORS: Final = {
    "400": "a bad body or parameter: `problems` name each field and its rule",
    "401": "no valid API token (`WWW-Authenticate: Bearer`)",
    "403": "the token's roles do not allow this (the message names the roles that do)",
    "404": "no such model, version, request or route",
    "405": "the route takes another method",
    "409": "someone else changed it first, or the request is no longer pending",
    "413": "the body is too large",
    "415": "the body is not declared `Content-Type: application/json`",
    "422": "refused by the release gates (the whole result), or by a contract",
    "503": "the metadata store is unreachable; retry shortly",
}
_READ_ERRORS: Final = ("400", "401", "403", "404", "503")
_WRITE_ERRORS: Final = ("400", "401", "403", "404", "409", "413", "415", "422", "503")


def _ok(document: dict[str, Any] | None = None) -> dict[str, Any]:
    """An answer's schema: `ok` and the listed keys (documents of the CLI's `--json`)."""
    properties: dict[str, Any] = {"ok": {"type": "boolean"}}
    properties.update(document or {})
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
    }


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _responses(statuses: dict[str, tuple[str, dict[str, Any]]], errors: tuple[str, ...]) -> Any:
    answers: dict[str, Any] = {
        status: {"description": text, **_json(schema)}
        for status, (text, schema) in statuses.items()
    }
    for status in errors:
        answers.setdefault(status, {"$ref": f"#/components/responses/Error{status}"})
    return answers


def _read(summary: str, key: str, parameters: list[dict[str, Any]] | None = None) -> Any:
    return {
        "get": {
            "summary": summary,
            "parameters": parameters or [],
            "responses": _responses(
                {"200": ("the document", _ok({key: {"type": ["object", "array"]}}))},
                _READ_ERRORS,
            ),
        }
    }


def _body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "required": bool(required),
        **_json(
            {
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": False,
            }
        ),
    }


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def api_openapi_document(
    *, max_body_bytes: int, max_feedback_bytes: int, max_rows: int
) -> dict[str, Any]:
    """The document of `/api/v1` under these limits (`keel.web.api`'s and keel.yaml's)."""
    name = _path("name", _NAME)
    version = _path("version", {"type": "integer", "minimum": 1, "maximum": MAX_VERSION})
    request_id = _path("id", {**_TEXT, "minLength": 1})
    note = {"type": "string", "minLength": 1, "pattern": "^[^\\u0000]*\\S[^\\u0000]*$"}
    optional_note = {"type": ["string", "null"], "pattern": "^[^\\u0000]*$"}
    result = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    decision = {
        "post": {
            "summary": "decide a pending release request (approver, admin)",
            "parameters": [request_id],
            "requestBody": _body({"comment": optional_note}, []),
            "responses": _responses({"200": ("the decision", result)}, _WRITE_ERRORS),
        }
    }
    paths: dict[str, Any] = {
        "/api/v1/openapi.json": {
            "get": {
                "summary": "this document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1", **_json({"type": "object"})}},
            }
        },
        "/api/v1/whoami": _read("the token's user and roles", "user"),
        "/api/v1/models": _read("every registered model", "models"),
        "/api/v1/models/{name}": _read("a model: its versions and aliases", "model", [name]),
        "/api/v1/models/{name}/versions/{version}": _read(
            "a model version", "version", [name, version]
        ),
        "/api/v1/models/{name}/versions/{version}/promote": {
            "post": {
                "summary": "move an alias to the version, under the release policy "
                "(deployer, admin)",
                "parameters": [name, version],
                "requestBody": _body(
                    {
                        "alias": {**_ALIAS, "description": "an alias keel.yaml declares"},
                        "reason": optional_note,
                        "eval_data": optional_note,
                    },
                    ["alias"],
                ),
                "responses": _responses(
                    {
                        "200": ("promoted", result),
                        "202": ("waiting for approval: the request it opened", result),
                        "422": ("refused by the gates: the whole result", result),
                    },
                    _WRITE_ERRORS,
                ),
            }
        },
        "/api/v1/models/{name}/rollback": {
            "post": {
                "summary": "move an alias back to its previous holder (deployer, admin)",
                "parameters": [name],
                "requestBody": _body(
                    {"alias": {"type": ["string", "null"]}, "reason": note}, ["reason"]
                ),
                "responses": _responses({"200": ("rolled back", result)}, _WRITE_ERRORS),
            }
        },
        "/api/v1/requests": _read(
            "release requests, newest first",
            "requests",
            [
                _query("status", {"type": "string", "enum": list(REQUEST_STATUSES)}),
                _query("model", _TEXT),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": _QUERY_MAX}),
            ],
        ),
        "/api/v1/requests/{id}": _read("a release request", "request", [request_id]),
        "/api/v1/requests/{id}/approve": decision,
        "/api/v1/requests/{id}/reject": decision,
        "/api/v1/audit-log": {
            "get": {
                "summary": "audit events in order; page on with ?after=next_after",
                "parameters": [
                    _query("model", _TEXT),
                    _query("after", {"type": "integer", "minimum": 0, "maximum": _QUERY_MAX}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": _QUERY_MAX}),
                ],
                "responses": _responses(
                    {
                        "200": (
                            "the events",
                            _ok({"events": {"type": "array"}, "next_after": {"type": "integer"}}),
                        )
                    },
                    _READ_ERRORS,
                ),
            }
        },
        "/api/v1/audit-log/verify": {
            "get": {
                "summary": "verify the audit chain; `ok` is false when it is broken",
                "responses": _responses({"200": ("the chain report", result)}, _READ_ERRORS),
            }
        },
        "/api/v1/feedback": {
            "post": {
                "summary": "delayed labels for logged predictions (labeler, trainer, admin)",
                "requestBody": {
                    "required": True,
                    **_json(feedback_schema(max_rows)),
                },
                "responses": _responses(
                    {"200": ("what was recorded", result)},
                    _WRITE_ERRORS,
                ),
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "keel HTTP API",
            "version": __version__,
            "description": (
                "Every call but this document's needs `Authorization: Bearer keel_...` (an "
                "admin creates tokens with `keel tokens create USER`); the token's roles decide "
                f"what it may change. Bodies are JSON, at most {max_body_bytes:,} bytes "
                f"({max_feedback_bytes:,} for /feedback) and 16 levels deep."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API token: keel_<id>_<secret>",
                }
            },
            "schemas": {"Error": _ERROR},
            "responses": {
                f"Error{status}": {
                    "description": text,
                    **_json({"$ref": "#/components/schemas/Error"}),
                }
                for status, text in _ERRORS.items()
            },
        },
    }
