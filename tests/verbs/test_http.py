"""The HTTP API acts through the verbs: on a real server on loopback, each release action
answers with the document of the verb's result, the token's user acting."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from keel.cli.output import to_jsonable
from keel.domain.identity import Actor
from keel.release.service import DecisionResult, PromotionResult, RollbackResult
from keel.verbs import AuditVerification
from tests.web.test_api_auth import Answer, Api, api  # noqa: F401 - `api` is a fixture


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple[Any, Any]]]:
    """(actor, result) of each verb the API called, in order."""
    seen: dict[str, list[tuple[Any, Any]]] = {}

    def recording(name: str, verb: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            result = verb(*args, **kwargs)
            seen.setdefault(name, []).append((kwargs.get("actor"), result))
            return result

        return call

    for module, name in [
        ("promote", "promote"),
        ("approve", "approve"),
        ("reject", "reject"),
        ("rollback", "rollback"),
        ("audit", "audit_verify"),
    ]:
        found = importlib.import_module(f"keel.verbs.{module}")
        monkeypatch.setattr(found, name, recording(name, getattr(found, name)))
    return seen


def _same(answer: Answer, calls: dict[str, list[tuple[Any, Any]]], verb: str, kind: type) -> Any:
    assert len(calls.get(verb, [])) == 1, (verb, answer.text)
    actor, result = calls.pop(verb)[0]
    assert isinstance(result, kind)
    expected = json.loads(json.dumps(to_jsonable(result.to_dict())))
    assert {k: v for k, v in answer.document.items() if k != "ok"} == {
        k: v for k, v in expected.items() if k != "ok"
    }
    return actor, result


def test_release_actions_answer_with_the_verbs_results(
    api: Api,  # noqa: F811 - the fixture imported above
    calls: dict[str, list[tuple[Any, Any]]],
) -> None:
    asked = api(
        "/api/v1/models/flights/versions/1/promote", user="dee", body={"alias": "production"}
    )
    assert asked.status == 202, asked.text
    actor, result = _same(asked, calls, "promote", PromotionResult)
    assert isinstance(actor, Actor) and (actor.name, actor.via) == ("dee", "token")
    request = result.request.id

    approved = api(f"/api/v1/requests/{request}/approve", user="abe", body={"comment": "ok"})
    assert approved.status == 200, approved.text
    actor, decision = _same(approved, calls, "approve", DecisionResult)
    assert decision.outcome == "approved" and actor.name == "abe"

    again = api(
        "/api/v1/models/flights/versions/2/promote", user="dee", body={"alias": "production"}
    )
    assert again.status == 202, again.text
    request = _same(again, calls, "promote", PromotionResult)[1].request.id
    rejected = api(f"/api/v1/requests/{request}/reject", user="abe", body={})
    assert rejected.status == 200, rejected.text
    assert _same(rejected, calls, "reject", DecisionResult)[1].outcome == "rejected"

    for version in (1, 2):
        moved = api(
            f"/api/v1/models/flights/versions/{version}/promote",
            user="dee",
            body={"alias": "staging"},
        )
        assert moved.status == 200, moved.text
        assert _same(moved, calls, "promote", PromotionResult)[1].outcome == "promoted"
    back = api(
        "/api/v1/models/flights/rollback", user="dee", body={"alias": "staging", "reason": "slow"}
    )
    assert back.status == 200, back.text
    rolled = _same(back, calls, "rollback", RollbackResult)[1]
    assert (rolled.from_version, rolled.to_version) == (2, 1)

    verified = api("/api/v1/audit-log/verify", user="vi")
    assert verified.status == 200, verified.text
    assert _same(verified, calls, "audit_verify", AuditVerification)[1].ok
