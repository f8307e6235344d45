"""schemathesis against a running server and its own OpenAPI document, bounded for CI.

`fuzz` generates requests for every operation the document lists (valid ones, then invalid
ones), sends them to the server and checks each answer: never a 5xx, a status the document
lists for the operation, and a body that matches the document's schema for that status. It
returns every failure found (operation, check, request), so one run shows them all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

__all__ = ["fuzz"]

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


def fuzz(
    url: str,
    document: Mapping[str, Any],
    *,
    examples: int,
    headers: Mapping[str, str] | None = None,
    only: frozenset[str] | None = None,
) -> list[str]:
    """Failures of up to `examples` valid and as many invalid requests per operation of
    `document` (only those labelled in `only`, like `POST /predict`, if given), sent to
    `url`."""
    schema = schemathesis.openapi.from_dict(dict(document))
    failures: list[str] = []
    sent = dict(headers or {})
    for result in schema.get_all_operations():
        operation = result.ok()
        if only is not None and operation.label not in only:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            label = f"{operation.label} ({mode.value})"
            run = _runner(operation.as_strategy(generation_mode=mode), examples, url, sent)
            try:
                found, calls = run()
                assert calls > 0, f"{label}: no request was generated"
                failures.extend(f"{label}: {failure}"[:3000] for failure in found)
            except Unsatisfiable:  # nothing to make invalid (an operation without inputs)
                assert mode is GenerationMode.NEGATIVE, operation.label
    return failures


def _runner(
    strategy: Any, examples: int, url: str, headers: dict[str, str]
) -> Callable[[], tuple[list[str], int]]:
    def run() -> tuple[list[str], int]:
        found: list[str] = []
        calls = [0]

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,  # the same requests on every run: a failure reproduces
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def call(case: Any) -> None:
            calls[0] += 1
            try:
                case.call_and_validate(base_url=url, headers=headers, checks=CHECKS)
            except Exception as failure:  # noqa: BLE001 - collected, reported together
                found.append(str(failure))

        call()
        return found, calls[0]

    return run
