"""`keel rollback` and `keel audit-log [verify]` as a user runs them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from keel.project import Project
from tests.fixtures.cli import Keel
from tests.fixtures.trained import MODEL, write_spec


def _holder(folder: Path, alias: str = "production") -> int | None:
    with Project.open(folder, env={"KEEL_USER": "ana"}) as project:
        return project.metadata.releases.holder(MODEL, alias)


def test_rollback_restores_the_previous_version(
    keel: Keel, release_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_spec(release_project, {"approvals": {"required": 0}})
    for version in (1, 2):
        assert (
            keel("-C", release_project, "promote", f"{MODEL}@{version}", "--to", "production").code
            == 0
        )
    missing = keel("-C", release_project, "rollback", MODEL)
    assert missing.code == 2 and "--reason" in missing.err
    monkeypatch.setenv("KEEL_USER", "oncall")
    result = keel("-C", release_project, "rollback", MODEL, "--reason", "error rate up", "--json")
    assert result.code == 0, result.err
    assert result.json()["from"] == 2 and result.json()["to"] == 1
    assert _holder(release_project) == 1
    log = keel("-C", release_project, "audit-log", MODEL, "--kind", "alias.rolled_back")
    assert "oncall" in log.out and "error rate up" in log.out
    nothing = keel("-C", release_project, "rollback", MODEL, "--reason", "again")
    assert nothing.code == 4 and "no previous holder" in nothing.err
    assert _holder(release_project) == 1


def test_audit_log_lists_every_step_and_verify_catches_an_edit(
    keel: Keel, release_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_spec(release_project, {"approvals": {"required": 1}})
    promoted = keel("-C", release_project, "promote", f"{MODEL}@1", "--to", "production", "--json")
    request_id = promoted.json()["request"]["id"]
    monkeypatch.setenv("KEEL_USER", "ben")
    assert keel("-C", release_project, "approve", request_id).code == 0
    listing = keel("-C", release_project, "audit-log", "--json").json()["events"]
    kinds = [e["kind"] for e in listing]
    assert kinds == [
        "model.registered",
        "model.registered",
        "model.registered",
        "gates.evaluated",
        "release.requested",
        "release.approved",
        "alias.moved",
    ]
    assert [e["seq"] for e in listing] == list(range(1, 8))
    newest = keel("-C", release_project, "audit-log", "--limit", "2").out
    assert "release.approved" in newest and "model.registered" not in newest

    ok = keel("-C", release_project, "audit-log", "verify")
    assert ok.code == 0 and "OK: 7 events chain correctly" in ok.out

    database = release_project / ".keel" / "keel.db"
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 6")
    bad = keel("-C", release_project, "audit-log", "verify", "--json")
    assert bad.code == 1
    assert bad.json()["broken"] == {
        "seq": 6,
        "rule": "edited event",
        "detail": bad.json()["broken"]["detail"],
    }
    text = keel("-C", release_project, "audit-log", "verify")
    assert "BROKEN at event 6: edited event" in text.out


def test_an_external_anchor_catches_a_rewritten_chain(keel: Keel, release_project: Path) -> None:
    """Someone with write access re-hashes every event after editing one: the chain and
    head agree again, but the hash recorded outside the database does not."""
    from keel.domain.audit import event_hash

    first = keel("-C", release_project, "audit-log", "verify", "--json").json()
    anchor = f"{first['head']['seq']}:{first['head']['hash']}"
    assert keel("-C", release_project, "audit-log", "verify", "--expect", anchor).code == 0

    database = release_project / ".keel" / "keel.db"
    with sqlite3.connect(database) as conn:
        rows = conn.execute(
            "SELECT seq, at, actor, kind, model, version, alias, subject, reason, evidence "
            "FROM audit_events ORDER BY seq"
        ).fetchall()
        previous = "blake3:" + "0" * 64
        from datetime import UTC, datetime

        for seq, at, actor, kind, model, version, alias, subject, reason, evidence in rows:
            if seq == 2:
                actor = "mallory"
            moment = datetime.fromisoformat(at).replace(tzinfo=UTC)
            digest = event_hash(
                previous,
                seq=seq,
                at=moment,
                actor=actor,
                kind=kind,
                model=model,
                version=version,
                alias=alias,
                subject=subject,
                reason=reason,
                evidence_json=evidence,
            )
            conn.execute(
                "UPDATE audit_events SET actor = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (actor, previous, digest, seq),
            )
            previous = digest
        conn.execute("UPDATE audit_head SET hash = ? WHERE id = 1", (previous,))
    with Project.open(release_project, env={"KEEL_USER": "ana"}) as project:
        assert project.metadata.audit.verify().ok  # internally consistent
    # The first verify checkpointed the head outside the database: caught without the anchor.
    signed = keel("-C", release_project, "audit-log", "verify", "--json")
    assert signed.code == 1 and signed.json()["broken"]["rule"] == "rewritten history"
    caught = keel("-C", release_project, "audit-log", "verify", "--expect", anchor, "--json")
    assert caught.code == 1
    bad = keel("-C", release_project, "audit-log", "verify", "--expect", "nonsense")
    assert bad.code == 2 and "--expect" in bad.err
