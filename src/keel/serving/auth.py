"""Who calls, and in which form: the checks every HTTP route that changes something shares.

    actor = await authenticate(project, request)   # 401 unless a valid API token
    require(actor, "label")                         # PermissionDenied (403) naming the roles
    require_json(request)                           # 415 unless the body is application/json

The registry API (`/api/v1`) and the serving port's `POST /v1/feedback` both use them, so a
token means the same on every port. `authenticate` reads `Authorization: Bearer keel_...`
and asks the metadata store, which checks the secret's hash, expiry, revocation and whether
the user is enabled; the roles come with the answer, read at every call.

`require_json` is what makes a browser ask first: a page of another origin can POST
`text/plain`, a form or `multipart/form-data` without a CORS preflight, never
`application/json`. No keel route answers a preflight with `Access-Control-Allow-Origin`, so
another site's page cannot send a write at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from keel.domain.identity import Actor
from keel.errors import PermissionDenied

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["JSON_MEDIA_TYPE", "REALM", "Refusal", "authenticate", "has_body", "require_json"]

REALM: Final = 'Bearer realm="keel"'
JSON_MEDIA_TYPE: Final = "application/json"


class Refusal(Exception):
    """An HTTP-level refusal outside keel's error tree (401, 413, 415): its status, a code
    and message for the answer, and headers such as the `WWW-Authenticate` challenge.
    Each app renders it in its own error document."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        hint: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.hint = hint
        self.headers = dict(headers or {})


async def authenticate(project: Workspace, request: Request) -> Actor:
    """The user whose API token the request carries; `Refusal` 401, with the challenge and
    the reason (never the secret), when there is none or the store refuses it."""
    header = request.headers.get("authorization")
    if header is None:
        raise Refusal(
            401,
            "unauthenticated",
            "this call needs an API token: send `Authorization: Bearer keel_...`",
            hint="an admin creates one with `keel tokens create USER`",
            headers={"WWW-Authenticate": REALM},
        )
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refusal(
            401,
            "unauthenticated",
            "the Authorization header must be `Bearer keel_...`",
            headers={"WWW-Authenticate": f'{REALM}, error="invalid_request"'},
        )
    try:
        actor: Actor = await run_in_threadpool(
            project.metadata.identities.authenticate, token.strip()
        )
    except PermissionDenied as refused:  # says why, never the secret
        raise Refusal(
            401,
            "unauthenticated",
            refused.message,
            hint=refused.hint,
            headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
        ) from None
    return actor


def has_body(request: Request) -> bool:
    """Whether the request says it carries a body (a non-zero length, or chunks)."""
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() != "0"
    return "transfer-encoding" in request.headers


def require_json(request: Request) -> None:
    """`Refusal` 415 unless the body is declared `application/json` (parameters such as
    `charset=utf-8` allowed)."""
    declared = request.headers.get("content-type", "")
    media_type = declared.split(";", 1)[0].strip().lower()
    if media_type == JSON_MEDIA_TYPE:
        return
    shown = f"`{declared.strip()}`" if declared.strip() else "none"
    raise Refusal(
        415,
        "unsupported_media_type",
        f"the request body must be JSON: send `Content-Type: {JSON_MEDIA_TYPE}` (got {shown})",
    )
