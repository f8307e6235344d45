"""The HTTP API on a real uvicorn server on loopback: tokens, roles, bodies, the release flow."""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import update

from keel.domain.digest import Digest
from keel.domain.identity import parse_token
from keel.domain.run import Run, new_run_id
from keel.metadata.sql.schema import api_tokens
from keel.project import Project
from keel.web import create_api
from keel.web.api import MAX_BODY_BYTES
from keel.web.server import run_in_thread

#: No gates need scoring, so no model is trained; `production` needs one approval.
SPEC = """\
version: 1
name: web-test
owners: {release: rita}
release:
  gates: []
  approvals: {required: 1, aliases: [production], roles: [approver]}
"""

CONTRACT: dict[str, Any] = {
    "kind": "keel.inference-contract",
    "version": 1,
    "inputs": [{"name": "distance", "type": "float", "nullable": False}],
    "outputs": [{"name": "prediction", "type": "integer"}],
}

READS = [
    "/api/v1/whoami",
    "/api/v1/models",
    "/api/v1/models/flights",
    "/api/v1/models/flights/versions/1",
    "/api/v1/requests?status=pending",
    "/api/v1/audit-log?limit=5",
    "/api/v1/audit-log/verify",
]


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    document: Any
    text: str


@dataclass
class Api:
    url: str
    project: Project
    tokens: dict[str, str]

    def __call__(
        self,
        path: str,
        *,
        user: str | None = None,
        token: str | None = None,
        body: Any = None,
        raw: bytes | None = None,
        method: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        sent = dict(headers or {})
        if user is not None:
            token = self.tokens[user]
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        request = urllib.request.Request(  # noqa: S310 - an http:// URL on loopback
            self.url + path, data=data, headers=sent, method=method or ("POST" if data else "GET")
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
                text = response.read().decode()
                return Answer(response.status, response.headers, json.loads(text), text)
        except urllib.error.HTTPError as error:
            text = error.read().decode()
            return Answer(error.code, error.headers, json.loads(text), text)


def _register(project: Project, model: str = "flights", *, profiled: bool = True) -> int:
    """A complete version without training: a completed run, a package object and a
    reference profile (what makes a version usable) are enough. Without the profile
    (`profiled=False`) the version is registered but not usable."""
    metadata = project.metadata
    run = Run(
        id=new_run_id(),
        status="running",
        started_at=datetime.now(UTC),
        user="root",
        host="box",
        pid=1,
    )
    metadata.runs.start(run)
    package = Digest.of_hex(hashlib.sha256(run.id.encode()).hexdigest())
    metadata.artifacts.record(package, size=1, media_type="application/zip", actor="root")
    registered = metadata.models.register(
        model,
        run_id=run.id,
        package=package,
        flavor="sklearn",
        inference_contract=CONTRACT,
        metrics={"auc": 0.8},
        actor="root",
    )
    metadata.runs.finish(run.id, "completed")
    if profiled:
        metadata.monitoring.put_reference(
            model, registered.version, package, row_count=1, source="no rows: a test stand-in"
        )
    return registered.version


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    env = {"KEEL_USER": "root"}
    Project.init(tmp_path, env=env).close()
    (tmp_path / "keel.yaml").write_text(SPEC)
    with Project.open(tmp_path, env=env) as project:
        identities = project.metadata.identities
        for name, roles in {
            "vi": ["viewer"],
            "dee": ["deployer"],
            "abe": ["approver"],
            "ana": ["approver", "deployer"],
        }.items():
            identities.add_user(name, roles, actor="root")  # type: ignore[arg-type]
        tokens = {
            name: identities.create_token(name, actor="root")
            for name in ("vi", "dee", "abe", "ana")
        }
        _register(project)
        _register(project)
        with run_in_thread(create_api(project)) as url:
            yield Api(url, project, tokens)


def test_every_call_needs_a_valid_token(api: Api) -> None:
    for path in [*READS, "/api/v1/models/flights/versions/2/promote"]:
        answer = api(path, method="POST" if path.endswith("promote") else "GET")
        assert answer.status == 401, path
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert answer.document["error"]["code"] == "unauthenticated"

    wrong_scheme = api("/api/v1/whoami", headers={"Authorization": "Basic YW5hOnB3"})
    assert wrong_scheme.status == 401
    assert 'error="invalid_request"' in wrong_scheme.headers["WWW-Authenticate"]

    token = api.tokens["vi"]
    token_id, secret = parse_token(token)
    refused = {
        "malformed": api("/api/v1/whoami", token="keel_nope"),
        "is not valid": api("/api/v1/whoami", token=f"keel_{token_id}_{'B' * 43}"),
    }
    identities = api.project.metadata.identities
    revoked = identities.create_token("vi", actor="root")
    identities.revoke_token(parse_token(revoked)[0], actor="root")
    refused["was revoked"] = api("/api/v1/whoami", token=revoked)
    expired = identities.create_token("vi", actor="root", ttl=timedelta(hours=1))
    with api.project.metadata._engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(
            update(api_tokens)
            .where(api_tokens.c.id == parse_token(expired)[0])
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    refused["expired at"] = api("/api/v1/whoami", token=expired)
    for why, answer in refused.items():
        assert answer.status == 401, why
        assert why in answer.document["error"]["message"]
        assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
        assert secret not in answer.text

    assert api("/api/v1/whoami", user="vi").status == 200
    identities.disable_user("vi", actor="root")
    disabled = api("/api/v1/whoami", user="vi")
    assert disabled.status == 401 and "user vi is disabled" in disabled.document["error"]["message"]


def test_a_viewer_reads_but_changes_nothing(api: Api) -> None:
    for path in READS:
        answer = api(path, user="vi")
        assert answer.status == 200, (path, answer.document)
        assert answer.document["ok"] is True
        assert answer.headers["Cache-Control"] == "no-store"
    assert api("/api/v1/whoami", user="vi").document["user"] == {
        "name": "vi",
        "roles": ["viewer"],
        "via": "token",
    }
    model = api("/api/v1/models/flights", user="vi").document["model"]
    assert [v["version"] for v in model["versions"]] == [2, 1]
    assert model["aliases"] == {"candidate": 2}
    version = api("/api/v1/models/flights/versions/1", user="vi").document["version"]
    assert version["ref"] == "flights@1" and version["aliases"] == []

    for path, body, roles in [
        ("/api/v1/models/flights/versions/2/promote", {"alias": "production"}, "admin, deployer"),
        ("/api/v1/models/flights/rollback", {"reason": "bad"}, "admin, deployer"),
        ("/api/v1/requests/abc123/approve", {}, "admin, approver"),
        ("/api/v1/requests/abc123/reject", {}, "admin, approver"),
    ]:
        answer = api(path, user="vi", body=body)
        assert answer.status == 403, path
        assert answer.document["error"]["code"] == "permission_denied"
        assert f"needs one of the roles {roles}" in answer.document["error"]["message"]
    assert api.project.metadata.releases.requests() == []


def test_bad_bodies_and_parameters_name_the_field(api: Api) -> None:
    promote = "/api/v1/models/flights/versions/2/promote"

    def problems(answer: Answer) -> set[str]:
        assert answer.status == 400, answer.document
        assert answer.document["error"]["code"] == "config_error"
        return {p["field"] for p in answer.document["error"]["problems"]}

    assert problems(api(promote, user="dee", raw=b"{not json")) == {"body"}
    assert problems(api(promote, user="dee", raw=b"\xff\xfe")) == {"body"}
    assert problems(api(promote, user="dee", body=["production"])) == {"body"}
    assert problems(api(promote, user="dee", body={"alias": 7})) == {"alias"}
    assert problems(api(promote, user="dee", body={"reason": "x"})) == {"alias"}
    assert problems(api(promote, user="dee", body={"alias": "x", "reson": "typo"})) == {"reson"}
    assert problems(api(promote, user="dee", body={"alias": "Not An Alias"})) == {"alias"}
    rollback = "/api/v1/models/flights/rollback"
    assert problems(api(rollback, user="dee", body={"alias": "production"})) == {"reason"}
    assert problems(api(rollback, user="dee", body={"reason": "   "})) == {"reason"}
    bad_version = "/api/v1/models/flights/versions/x/promote"
    assert problems(api(bad_version, user="dee", body={"alias": "production"})) == {"version"}
    assert problems(api("/api/v1/models/flights/versions/1e3", user="vi")) == {"version"}
    assert problems(api("/api/v1/requests?status=open", user="vi")) == {"status"}
    assert problems(api("/api/v1/audit-log?after=-1", user="vi")) == {"after"}
    assert problems(api("/api/v1/audit-log?limit=0", user="vi")) == {"limit"}
    approve = "/api/v1/requests/abc123/approve"
    assert problems(api(approve, user="abe", body={"comment": ["x"]})) == {"comment"}

    oversized = {"alias": "production", "reason": "x" * MAX_BODY_BYTES}
    answer = api(promote, user="dee", body=oversized)
    assert answer.status == 413 and answer.document["error"]["code"] == "body_too_large"
    # A chunked body declares no length: it is cut off while it is read.
    assert _chunked(api, promote, api.tokens["dee"], b"x" * (MAX_BODY_BYTES + 10)) == 413
    assert api.project.metadata.releases.requests() == []


def test_unknown_things_and_methods_are_json(api: Api) -> None:
    missing = api("/api/v1/models/trains", user="vi")
    assert missing.status == 404 and missing.document["error"]["code"] == "not_found"
    assert api("/api/v1/models/flights/versions/9", user="vi").status == 404
    assert api("/api/v1/requests/0123456789", user="vi").status == 404
    route = api("/api/v1/nothing-here", user="vi")
    assert route.status == 404 and route.document["ok"] is False
    wrong = api("/api/v1/models/flights/versions/2/promote", user="vi")  # GET
    assert wrong.status == 405 and wrong.document["error"]["code"] == "method_not_allowed"


def test_internal_errors_say_nothing_inside(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise RuntimeError("password=hunter2 at line 12")

    monkeypatch.setattr(api.project.metadata.models, "list_models", broken)
    with caplog.at_level(logging.ERROR, logger="keel.web.api"):
        answer = api("/api/v1/models", user="vi")
    assert answer.status == 500
    assert answer.document["error"]["code"] == "internal_error"
    assert "hunter2" not in answer.text and "Traceback" not in answer.text
    assert "hunter2" in caplog.text  # the operator sees it in the log


def test_release_flow_over_http(api: Api) -> None:
    promote = "/api/v1/models/flights/versions/1/promote"
    staged = api(promote, user="dee", body={"alias": "staging", "reason": "smoke test"})
    assert staged.status == 200, staged.document
    assert staged.document["outcome"] == "promoted" and staged.document["ok"] is True

    pending = api(promote, user="ana", body={"alias": "production", "reason": "first release"})
    assert pending.status == 202, pending.document
    request_id = pending.document["request"]["id"]
    listed = api("/api/v1/requests?status=pending&model=flights", user="vi").document
    assert [r["id"] for r in listed["requests"]] == [request_id]
    assert [r["owner"] for r in listed["requests"]] == ["rita"]  # the release owner
    shown = api(f"/api/v1/requests/{request_id}", user="vi").document["request"]
    assert (shown["alias"], shown["owner"]) == ("production", "rita")

    approve = f"/api/v1/requests/{request_id}/approve"
    own = api(approve, user="ana", body={"comment": "lgtm"})
    assert own.status == 403, own.document
    assert "separation of duties" in own.document["error"]["message"]
    approved = api(approve, user="abe", body={"comment": "checked the dashboards"})
    assert approved.status == 200, approved.document
    assert approved.document["outcome"] == "approved"
    assert api(approve, user="abe", body={}).status == 409  # no longer pending
    aliases = api("/api/v1/models/flights", user="vi").document["model"]["aliases"]
    assert aliases["production"] == 1

    second = api(
        "/api/v1/models/flights/versions/2/promote", user="dee", body={"alias": "production"}
    )
    assert second.status == 202
    reject = f"/api/v1/requests/{second.document['request']['id']}/reject"
    rejected = api(reject, user="abe", method="POST")  # no body: no comment
    assert rejected.status == 200 and rejected.document["outcome"] == "rejected"

    third = api(
        "/api/v1/models/flights/versions/2/promote", user="dee", body={"alias": "production"}
    )
    third_approve = f"/api/v1/requests/{third.document['request']['id']}/approve"
    assert api(third_approve, user="abe", method="POST").status == 200
    rolled = api(
        "/api/v1/models/flights/rollback", user="dee", body={"reason": "latency regression"}
    )
    assert rolled.status == 200, rolled.document
    assert (rolled.document["from"], rolled.document["to"]) == (2, 1)

    events = api.project.metadata.audit.events()
    actors = {(e.kind, e.actor) for e in events}
    assert {("release.requested", "ana"), ("release.approved", "abe")} <= actors
    assert ("alias.rolled_back", "dee") in actors
    log = api("/api/v1/audit-log?model=flights&limit=2", user="vi").document
    assert len(log["events"]) == 2 and log["next_after"] == log["events"][-1]["seq"]
    after = api(f"/api/v1/audit-log?model=flights&after={log['next_after']}", user="vi").document
    assert after["events"][0]["seq"] > log["next_after"]
    verified = api("/api/v1/audit-log/verify", user="vi").document
    assert verified["ok"] is True and verified["events"] == len(events)


def test_identity_changes_are_audited_and_only_hashes_are_stored(api: Api, tmp_path: Path) -> None:
    assert api("/api/v1/whoami", user="ana").status == 200
    audit = api.project.metadata.audit
    kinds = [(e.kind, e.subject) for e in audit.events(kinds=["user.added", "token.created"])]
    assert [k for k, _ in kinds] == ["user.added"] * 4 + ["token.created"] * 4
    assert audit.verify().ok

    api.project.close()  # the WAL's pages go into the database file too
    secrets = [parse_token(token)[1] for token in api.tokens.values()]
    stored = [path for path in tmp_path.rglob("*") if path.is_file()]
    database = Path(api.project.settings.db_url.removeprefix("sqlite:///"))
    assert database in stored
    for path in stored:
        content = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in content, path


def _chunked(api: Api, path: str, token: str, payload: bytes) -> int:
    parts = urlsplit(api.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        chunks = (payload[i : i + 8192] for i in range(0, len(payload), 8192))
        connection.request(
            "POST",
            path,
            body=chunks,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            encode_chunked=True,
        )
        return connection.getresponse().status
    finally:
        connection.close()


def test_promote_and_rollback_refuse_an_alias_the_project_does_not_declare(api: Api) -> None:
    promoted = api("/api/v1/models/flights/versions/2/promote", user="dee", body={"alias": "prod"})
    assert promoted.status == 400, promoted.document
    error = promoted.document["error"]
    assert error["code"] == "config_error"
    assert [p["field"] for p in error["problems"]] == ["alias"]
    assert "'prod' is not declared" in error["message"]
    assert "candidate, staging, canary, production" in error["message"]
    rolled = api(
        "/api/v1/models/flights/rollback", user="dee", body={"alias": "prod", "reason": "x"}
    )
    assert rolled.status == 400 and "'prod' is not declared" in rolled.document["error"]["message"]
    assert api.project.metadata.releases.requests() == []
    assert api.project.metadata.releases.holder("flights", "prod") is None
