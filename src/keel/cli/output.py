"""Rendering: one JSON document on stdout with `--json`, readable text otherwise."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click

from keel.domain.digest import Digest
from keel.domain.duration import format_duration, parse_duration

__all__ = [
    "duration_callback",
    "emit",
    "json_option",
    "json_out",
    "json_stdout",
    "parse_time",
    "to_jsonable",
]

F = TypeVar("F", bound=Callable[..., Any])


def json_option(function: F) -> F:
    """Add `--json` to a command: print one JSON document on stdout instead of text."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document on stdout."
    )(function)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, Path | Digest):
        return str(value)
    return value


#: Where `--json` documents go while a command runs with its stdout sent to stderr (a print
#: in the project's own code must not break the one document a script parses).
json_stdout: ContextVar[TextIO | None] = ContextVar("keel_json_stdout", default=None)


def json_out() -> TextIO:
    """The stream a `--json` document goes to: the command's real stdout."""
    return json_stdout.get() or sys.stdout


def emit(as_json: bool, payload: dict[str, Any], text: Callable[[], str] | str) -> None:
    """Print `payload` as JSON, or the text rendering of it."""
    if as_json:
        out = json_out()
        out.write(json.dumps(to_jsonable(payload), indent=2, sort_keys=False) + "\n")
    else:
        click.echo(text() if callable(text) else text)


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO-8601 time from a command-line option, UTC when no zone is given."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"expected an ISO-8601 time like 2013-07-01T00:00:00Z, got {value!r}",
            param_hint=option,
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def duration_callback(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> timedelta | None:
    """A click callback for a duration option (200ms, 30s, 15m, 1h, 7d); None stays None."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
