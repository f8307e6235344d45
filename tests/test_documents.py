"""The documents keel writes with `keel.serial` are byte for byte those it wrote by hand.

Each case is a result or stored value and the JSON its hand-written `to_dict` produced (the
`--json` output, the HTTP answer or the stored document users and older keels read), captured
before the class moved to `keel.serial`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from keel.retraining.canary.criteria import Criterion, SlotSummary
from keel.retraining.triggers import Trigger

CASES: list[tuple[str, Callable[[], Any], str]] = [
    (
        "a fired trigger",
        lambda: Trigger(
            "drift",
            True,
            0.31,
            0.2,
            "3 of 19 columns drifted",
            {"columns": ["dep_delay"], "share": 0.31},
        ),
        '{"name": "drift", "fired": true, "value": 0.31, "threshold": 0.2, '
        '"reason": "3 of 19 columns drifted", '
        '"evidence": {"columns": ["dep_delay"], "share": 0.31}}',
    ),
    (
        "a trigger without a value",
        lambda: Trigger("schedule", False, None, None, "not due", {}),
        '{"name": "schedule", "fired": false, "value": null, "threshold": null, '
        '"reason": "not due", "evidence": {}}',
    ),
    (
        "a canary slot summary",
        lambda: SlotSummary("canary", 2, 120, 40, 3.5, 12.25, 30, 0.91, None),
        '{"slot": "canary", "version": 2, "predictions": 120, "requests": 40, '
        '"latency_p50_ms": 3.5, "latency_p99_ms": 12.25, "labelled": 30, '
        '"performance": 0.91, "performance_note": null}',
    ),
    (
        "a rollback criterion with its own numbers",
        lambda: Criterion(
            "latency", 12.5, 10, True, True, "p99 12.5 ms over 10 ms", {"production_p99_ms": 8.0}
        ),
        '{"name": "latency", "value": 12.5, "limit": 10, "judged": true, "breached": true, '
        '"detail": "p99 12.5 ms over 10 ms", "production_p99_ms": 8.0}',
    ),
]


@pytest.mark.parametrize(("build", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_document_is_what_it_was(build: Callable[[], Any], expected: str) -> None:
    assert json.dumps(build().to_dict()) == expected
