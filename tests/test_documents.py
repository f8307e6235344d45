"""The documents keel writes with `keel.serial` are byte for byte those it wrote by hand.

Each case is a result or stored value and the JSON its hand-written `to_dict` produced (the
`--json` output, the HTTP answer or the stored document users and older keels read), captured
before the class moved to `keel.serial`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from keel.code.git import GitState
from keel.deploy.render import RenderResult
from keel.domain.digest import Digest
from keel.events.webhooks import WebhookDelivery
from keel.maturity.model import Item
from keel.models.signature import RequestProblem
from keel.monitoring.feedback.performance import WindowPerformance
from keel.monitoring.skew.results import FeatureSkew, SkewExample
from keel.retraining.canary.criteria import Criterion, SlotSummary
from keel.retraining.triggers import Trigger
from keel.stats.drift.applicability import Skipped
from keel.stats.drift.base import DriftResult
from keel.verbs.explain import Explanation

JULY_1 = datetime(2013, 7, 1, tzinfo=UTC)
JULY_2 = datetime(2013, 7, 2, tzinfo=UTC)

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
    (
        "a maturity item",
        lambda: Item(
            "data", "contract", "A data contract", "pass", "keel.yaml names one", None, 2, 2
        ),
        '{"area": "data", "key": "contract", "title": "A data contract", "status": "pass", '
        '"evidence": "keel.yaml names one", "fix": null, "points": 2, "max_points": 2}',
    ),
    (
        "a drift result",
        lambda: DriftResult(
            "dep_delay",
            "numeric",
            "ks",
            0.12,
            0.003,
            None,
            0.05,
            "p_value",
            True,
            1000,
            900,
            "exact",
        ),
        '{"column": "dep_delay", "kind": "numeric", "test": "ks", "statistic": 0.12, '
        '"p_value": 0.003, "score": null, "threshold": 0.05, "decision": "p_value", '
        '"drifted": true, "reference_count": 1000, "current_count": 900, "method": "exact"}',
    ),
    (
        "a drift result with numpy's floats",
        lambda: DriftResult(
            "dep_delay",
            "numeric",
            "psi",
            np.float64(0.25),
            None,
            np.float64(0.25),
            0.2,
            "score",
            bool(np.True_),
            1000,
            900,
            "sketch",
        ),
        '{"column": "dep_delay", "kind": "numeric", "test": "psi", "statistic": 0.25, '
        '"p_value": null, "score": 0.25, "threshold": 0.2, "decision": "score", '
        '"drifted": true, "reference_count": 1000, "current_count": 900, "method": "sketch"}',
    ),
    (
        "a request problem",
        lambda: RequestProblem(0, "dep_delay", "wrong type", "expected a number, got 'late'"),
        '{"record": 0, "field": "dep_delay", "rule": "wrong type", '
        '"detail": "expected a number, got \'late\'"}',
    ),
    (
        "a render result",
        lambda: RenderResult(
            target="docker",
            model="flights@1",
            output=Path("deploy/docker"),
            image="flights:v1",
            replicas=2,
            base_image="python:3.11-slim",
            files=["Dockerfile"],
            notes=["build it"],
            kept=["extra.txt"],
        ),
        '{"target": "docker", "model": "flights@1", "output": "deploy/docker", '
        '"image": "flights:v1", "replicas": 2, "base_image": "python:3.11-slim", '
        '"files": ["Dockerfile"], "kept": ["extra.txt"], "notes": ["build it"]}',
    ),
    (
        "a column drift skipped",
        lambda: Skipped("flight_date", "dates are not compared: the window moves them"),
        '{"column": "flight_date", "reason": "dates are not compared: the window moves them"}',
    ),
    (
        "an explanation (keel explain --json)",
        lambda: Explanation(
            prediction={"id": "0190f1c2", "at": "2013-07-01T12:30:00+00:00", "inputs": {"x": 1}},
            labels=[{"label": 1.5, "at": "2013-07-02T00:00:00+00:00"}],
            model={"name": "flights", "version": 1, "aliases": ["production"]},
            run={"id": "r1", "metrics": {"mae": 11.9}},
            dataset=None,
            code={"features": None},
            environment=None,
            release={"alias": "production", "requests": []},
        ),
        '{"prediction": {"id": "0190f1c2", "at": "2013-07-01T12:30:00+00:00", '
        '"inputs": {"x": 1}}, "labels": [{"label": 1.5, "at": "2013-07-02T00:00:00+00:00"}], '
        '"model": {"name": "flights", "version": 1, "aliases": ["production"]}, '
        '"run": {"id": "r1", "metrics": {"mae": 11.9}}, "dataset": null, '
        '"code": {"features": null}, "environment": null, '
        '"release": {"alias": "production", "requests": []}}',
    ),
    (
        "a dirty git state",
        lambda: GitState("9f1c2ab", "main", True, Digest.of_hex("ab" * 32)),
        '{"commit": "9f1c2ab", "branch": "main", "dirty": true, '
        '"diff_digest": "blake3:' + "ab" * 32 + '"}',
    ),
    (
        "a git state without commits",
        lambda: GitState(None, None, False, None),
        '{"commit": null, "branch": null, "dirty": false, "diff_digest": null}',
    ),
    (
        "a webhook delivered",
        lambda: WebhookDelivery("audit", "https://hooks.example/keel", 3, 41),
        '{"webhook": "audit", "url": "https://hooks.example/keel", "ok": true, "delivered": 3, '
        '"cursor": 41, "error": null, "failed_seq": null, "more": false}',
    ),
    (
        "a webhook that failed",
        lambda: WebhookDelivery("audit", "https://hooks.example/keel", 0, 38, "HTTP 500", 39, True),
        '{"webhook": "audit", "url": "https://hooks.example/keel", "ok": false, "delivered": 0, '
        '"cursor": 38, "error": "HTTP 500", "failed_seq": 39, "more": true}',
    ),
    (
        "a skewed feature with an example",
        lambda: FeatureSkew(
            "distance", 40, 2, 1, 0, (SkewExample("0190f1c2", {"carrier": "UA"}, 12.0, None),)
        ),
        '{"feature": "distance", "compared": 40, "mismatches": 2, "mismatch_rate": 0.05, '
        '"missing_online": 1, "missing_offline": 0, "examples": [{"prediction_id": "0190f1c2", '
        '"key": {"carrier": "UA"}, "online": 12.0, "offline": null}]}',
    ),
    (
        "a feature never compared",
        lambda: FeatureSkew("distance", 0, 0),
        '{"feature": "distance", "compared": 0, "mismatches": 0, "mismatch_rate": null, '
        '"missing_online": 0, "missing_offline": 0, "examples": []}',
    ),
    (
        "a window's performance",
        lambda: WindowPerformance("flights", JULY_1, JULY_2, 1, 120, 30, "mae", 11.5),
        '{"model": "flights", "start": "2013-07-01T00:00:00+00:00", '
        '"end": "2013-07-02T00:00:00+00:00", "version": 1, "predictions": 120, "labelled": 30, '
        '"coverage": 0.25, "metric": "mae", "value": 11.5, "note": null}',
    ),
    (
        "a window without predictions",
        lambda: WindowPerformance(
            "flights", JULY_1, JULY_2, None, 0, 0, "mae", None, "no predictions"
        ),
        '{"model": "flights", "start": "2013-07-01T00:00:00+00:00", '
        '"end": "2013-07-02T00:00:00+00:00", "version": null, "predictions": 0, "labelled": 0, '
        '"coverage": null, "metric": "mae", "value": null, "note": "no predictions"}',
    ),
]


@pytest.mark.parametrize(("build", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_document_is_what_it_was(build: Callable[[], Any], expected: str) -> None:
    assert json.dumps(build().to_dict()) == expected
