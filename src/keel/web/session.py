"""Who is signed in to the UI: an API token kept in an HttpOnly cookie, checked at every call.

The cookie holds the token itself, so the store decides every request: a revoked token or a
removed role takes effect at once, as over the API. The cookie is `HttpOnly` (no script reads
it), `SameSite=Strict` (no other site's page sends it) and `Secure` behind HTTPS. Every form
that changes something also carries a CSRF value, an HMAC of the token under a key each UI
process draws at start, so a forged form post fails even where SameSite is not honoured.

Neither covers signing in, which needs no cookie: another site's page could post its own
token to /signin and the user would act under its name (login CSRF). So every form post,
/signin and /signout included, must come from this server's own pages: a browser names the
page's origin in `Origin` on every POST (`Referer` where it does not), and one naming another
origin is refused with a 403. A post with neither header is no browser's (curl, a script),
which no other site can make a user send.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qs, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from keel.domain.identity import Actor
from keel.errors import ConfigError, PermissionDenied

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["COOKIE", "FormError", "Session", "check_origin", "read_form", "safe_next"]

COOKIE: Final = "keel_session"
#: How long a sign-in lasts in the browser; the token's own expiry still applies.
MAX_AGE_S: Final = 8 * 3600
#: The largest form body accepted: a token, a comment and a few hidden fields.
MAX_FORM_BYTES: Final = 16 * 1024


class FormError(ConfigError):
    """A form post the UI cannot take (too large, not a form, a stale CSRF value): bad input,
    reported as any invalid value is (400)."""


@dataclass(frozen=True, slots=True)
class Session:
    """The signed-in actor (None when signed out) and the CSRF value for its forms."""

    actor: Actor | None
    csrf: str = ""


class Sessions:
    """Signs in and out, and reads the session of each request."""

    def __init__(self, project: Workspace) -> None:
        self._project = project
        self._key = secrets.token_bytes(32)

    def csrf_for(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()[:32]

    async def authenticate(self, token: str) -> Actor:
        """The token's actor; `PermissionDenied` for an unknown, revoked or expired token."""
        actor: Actor = await run_in_threadpool(
            self._project.metadata.identities.authenticate, token
        )
        return actor

    async def read(self, request: Request) -> Session:
        """The request's session; a cookie whose token no longer works is signed out."""
        token = request.cookies.get(COOKIE, "")
        if not token:
            return Session(None)
        try:
            actor = await self.authenticate(token)
        except PermissionDenied:
            return Session(None)
        return Session(actor, self.csrf_for(token))

    def check_csrf(self, request: Request, value: str) -> None:
        token = request.cookies.get(COOKIE, "")
        if not token or not hmac.compare_digest(self.csrf_for(token), value):
            raise FormError(
                "this form is stale or came from another page: reload and try again",
                hint="sign in again if the problem stays",
            )

    @staticmethod
    def sign_in(response: Response, request: Request, token: str, base: str) -> None:
        response.set_cookie(
            COOKIE,
            token,
            max_age=MAX_AGE_S,
            path=base or "/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    @staticmethod
    def sign_out(response: Response, base: str) -> None:
        response.delete_cookie(COOKIE, path=base or "/", httponly=True, samesite="strict")


_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def _origin(url: str) -> str | None:
    """`scheme://host[:port]` of a URL, lower case, without a default port; None for
    anything else (the `null` origin of a sandboxed page or a file)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return (
        f"{scheme}://{host}"
        if port in (None, _DEFAULT_PORTS[scheme])
        else f"{scheme}://{host}:{port}"
    )


def check_origin(request: Request) -> None:
    """`PermissionDenied` (a 403) for a form post made by another origin's page."""
    header, claimed = "Origin", request.headers.get("origin")
    if claimed is None:
        header, claimed = "Referer", request.headers.get("referer")
        if claimed is None:
            return  # no browser's post: no other site can make a user send it
    host = request.headers.get("host", "")
    scheme = request.url.scheme
    own = {_origin(f"{scheme}://{host}")}
    if scheme == "http":
        own.add(_origin(f"https://{host}"))  # TLS ended by a proxy in front of keel
    if _origin(claimed) is None or _origin(claimed) not in own:
        raise PermissionDenied(
            f"form posts are accepted only from this server's own pages: the request's "
            f"{header} is {claimed[:200]!r}, not {_origin(f'{scheme}://{host}')}",
            hint="open the page on this server and submit the form there",
        )


async def read_form(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body as single values (the first of each)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise FormError(f"expected a form post (application/x-www-form-urlencoded), got {kind!r}")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormError(f"the form is larger than {MAX_FORM_BYTES:,} bytes")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as error:
        raise FormError("the form is not UTF-8 text") from error
    return {key: values[0] for key, values in fields.items()}


def safe_next(value: str | None, base: str) -> str:
    """Where to go after signing in: a path on this site, never another origin."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return base + "/"
    return value
