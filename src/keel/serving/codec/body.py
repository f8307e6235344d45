"""A request body as JSON: malformed, non-finite, too deep or NUL-bearing documents refused."""

from __future__ import annotations

import json
import re
from typing import Any, Final

import orjson

from keel.serving.codec.problems import BadRequest, Problem

__all__ = ["parse_json", "refuse_nul", "unparsable"]


#: How deeply a request document may nest (a tabular request needs 4 levels, feedback 3).
MAX_DEPTH: Final = 16


def parse_json(body: bytes) -> Any:
    """The JSON document in `body`; `BadRequest` 400 for malformed or too deeply nested JSON.

    Every JSON body keel's servers read goes through here (`/predict`, `/v2`, `/v1/feedback`
    and `/api/v1`), so one depth bound holds everywhere: Python's own parser would recurse
    until a `RecursionError`.

    NaN and Infinity are not JSON and are refused here (Python's own parser would accept them).
    """
    if not body.strip():
        raise BadRequest(
            400,
            "the request body is empty: expected a JSON object",
            [Problem("body", "a JSON object", "empty")],
        )
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):
            raise _too_deep() from None  # orjson's own bound (1024), far above ours
        raise _non_finite(body, exc) or BadRequest(
            400, f"malformed JSON: {exc}", [Problem("body", "valid JSON", str(exc))]
        ) from None
    _check_depth(document)
    # A NUL can only enter a JSON string as the escape \u0000; no store keeps it in text
    # (PostgreSQL refuses it, and a row that cannot be written would stall the prediction log
    # or the labels), so it is refused at the edge. The byte search costs nothing on the usual
    # request; only a hit walks the document to name the field.
    if b"\\u0000" in body:
        refuse_nul(document)
    return document


def refuse_nul(document: Any) -> None:
    """`BadRequest` naming the first string of `document` (keys included) that holds a NUL:
    no store keeps one in text, so a request carrying one is refused at the edge, whatever
    protocol brought it."""
    where = _nul_path(document, "")
    if where is not None:
        raise BadRequest(
            400,
            f"{where}: text must not contain NUL characters (\\u0000)",
            [Problem(where, "text without NUL characters", "contains \\u0000")],
        )


def _nul_path(value: Any, path: str) -> str | None:
    """Where the first string holding a NUL is (`records[0].carrier`, `id`), or None."""
    if isinstance(value, str):
        return path or "body" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return here
            found = _nul_path(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


#: What clients (Python's json, JavaScript's JSON.stringify of a NaN is null) may send for a
#: missing number; none of them is JSON, longest first so that -Infinity wins over Infinity.
_NON_FINITE: Final = ("-Infinity", "+Infinity", "Infinity", "-NaN", "NaN")
#: The key right before a value: `"name": ` (with an opening bracket for a tensor's data).
_KEY_BEFORE: Final = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:\s*\[?[^\[\]{}:"]*$')
_TENSOR_NAME: Final = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _unquote(text: str) -> str:
    try:
        return str(json.loads(f'"{text}"'))
    except ValueError:
        return text


def _non_finite(body: bytes, exc: orjson.JSONDecodeError) -> BadRequest | None:
    """A 400 that names a NaN or Infinity literal, where it is, and what to send instead."""
    text = body.decode("utf-8", errors="replace")
    start = exc.pos - 1 if 0 < exc.pos <= len(text) and text[exc.pos - 1] in "+-" else exc.pos
    literal = next((word for word in _NON_FINITE if text.startswith(word, start)), None)
    if literal is None:
        return None
    before = text[:start]
    line = before.count("\n") + 1
    column = start - (before.rfind("\n") + 1) + 1
    field = "body"
    key = _KEY_BEFORE.search(before)
    if key is not None:
        field = _unquote(key.group(1))
        if field == "data":
            # An OIP tensor: its name usually comes before its data.
            names = _TENSOR_NAME.findall(before)
            field = _unquote(names[-1]) if names else field
    where = f"line {line}, column {column}"
    message = (
        f"{field}: {literal} is not valid JSON ({where}); send null for a missing value"
        if field != "body"
        else f"{literal} is not valid JSON ({where}); send null for a missing value"
    )
    return BadRequest(
        400,
        message,
        [
            Problem(
                field,
                "a JSON value (NaN and Infinity are not JSON)",
                f"got {literal} at {where}; send null for a missing value",
            )
        ],
    )


def _too_deep() -> BadRequest:
    return BadRequest(
        400,
        f"the JSON document nests deeper than {MAX_DEPTH} levels",
        [Problem("body", f"at most {MAX_DEPTH} levels deep", "too deeply nested")],
    )


def _check_depth(document: Any) -> None:
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep()
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            # Scalars need no visit; only containers can nest further.
            stack.extend((item, depth + 1) for item in value if isinstance(item, dict | list))


#: Content types a JSON request body may come as (the binary extension's included).
_JSON_TYPES: Final = ("application/json", "application/octet-stream", "text/plain", "")


def unparsable(
    exc: BadRequest, body: bytes, content_type: str, *, missing_header: str | None
) -> BadRequest:
    """`exc` (`parse_json` refusing `body`) saying what the body looks like instead: JSON
    followed by binary tensors, sent without `missing_header` (the binary extension's, which
    says where the JSON ends; None when the request has it or is not OIP), or a body of
    another content type than JSON."""
    # Only a body that is not JSON at all (not one too deep, empty or non-finite).
    if exc.status != 400 or not exc.problems or exc.problems[0].rule != "valid JSON":
        return exc
    if missing_header is not None:
        end = _json_prefix(body)
        if end is not None and end < len(body.rstrip()):
            return BadRequest(
                400,
                f"the body is {end:,} bytes of JSON followed by {len(body) - end:,} bytes of "
                f"binary data, without the {missing_header} header: set it to the JSON "
                "part's length to send binary tensors (tritonclient does)",
                [Problem(missing_header, "the JSON part's length in bytes", "missing")],
            )
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind not in _JSON_TYPES and not kind.endswith("+json"):
        return BadRequest(
            400,
            f"{exc.message}; the request says Content-Type: {kind}, and keel reads JSON "
            "(send Content-Type: application/json)",
            [Problem("Content-Type", "application/json", kind), *exc.problems],
        )
    return exc


def _json_prefix(body: bytes) -> int | None:
    """The length in bytes of the JSON object `body` starts with, or None if it starts
    with none."""
    text = body.decode("utf-8", errors="replace")
    start = len(text) - len(text.lstrip())
    if not text.startswith("{", start):
        return None
    try:
        _, end = json.JSONDecoder().raw_decode(text, start)
    except (ValueError, RecursionError):  # not JSON, or nested past Python's own limit
        return None
    return len(text[:end].encode("utf-8", errors="replace"))
