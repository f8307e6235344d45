"""Signed checkpoints make the audit log something a database writer cannot rewrite unseen.

Each attack goes around keel, straight to the database, as someone holding its credentials
would: the chain alone still verifies afterwards (the attack is sound), and `keel
audit-log verify` catches it from the checkpoints in the artifact store, with no anchor
given by hand. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import delete, select, update

from keel.audit.checkpoints import FOLDER
from keel.domain.audit import event_hash
from keel.metadata.sql.engine import create_metadata_engine
from keel.metadata.sql.schema import audit_events, audit_head
from keel.project import Project
from tests.fixtures.cli import Keel
from tests.fixtures.s3 import S3Server


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def project_dir(
    request: pytest.FixtureRequest, keel: Keel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A new project (checkpoints every 5 events) on each metadata backend."""
    if request.param == "postgresql":
        monkeypatch.setenv("KEEL_DB_URL", request.getfixturevalue("fresh_postgres_url"))
    folder = tmp_path / "p"
    assert keel("init", folder, "--name", "flights").code == 0
    spec = yaml.safe_load((folder / "keel.yaml").read_text())
    spec.setdefault("release", {})["audit_checkpoint_every"] = 5
    (folder / "keel.yaml").write_text(yaml.safe_dump(spec))
    return folder


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    with Project.open(project_dir) as opened:
        yield opened


def _events(project: Project, count: int) -> None:
    """`count` events as keel records them, the second an approval by bea."""
    for number in range(count):
        actor, kind = ("bea", "release.approved") if number == 1 else ("ana", "user.changed")
        project.metadata.audit.record(
            actor=actor, kind=kind, model="flights", version=1, alias="production"
        )


def _verify(keel: Keel, project_dir: Path) -> tuple[int, dict[str, object], str]:
    result = keel("-C", project_dir, "audit-log", "verify", "--json")
    text = keel("-C", project_dir, "audit-log", "verify")
    return result.code, result.json(), text.out + text.err


def _delete_newest(project: Project, keep: int) -> None:
    """Delete every event after `keep` and rewind the head to it, as a DB writer can."""
    engine = create_metadata_engine(project.settings.db_url)
    with engine.begin() as conn:
        kept = conn.execute(select(audit_events.c.hash).where(audit_events.c.seq == keep)).one()
        conn.execute(delete(audit_events).where(audit_events.c.seq > keep))
        conn.execute(update(audit_head).values(seq=keep, hash=kept.hash))
    engine.dispose()


def _reattribute(project: Project, seq: int, actor: str) -> None:
    """Change event `seq`'s actor and recompute every hash from it on, and the head."""
    engine = create_metadata_engine(project.settings.db_url)
    with engine.begin() as conn:
        rows = conn.execute(
            select(audit_events).where(audit_events.c.seq >= seq).order_by(audit_events.c.seq)
        ).all()
        previous = rows[0].prev_hash
        for row in rows:
            who = actor if row.seq == seq else row.actor
            digest = event_hash(
                previous,
                seq=row.seq,
                at=row.at,
                actor=who,
                kind=row.kind,
                model=row.model,
                version=row.version,
                alias=row.alias,
                subject=row.subject,
                reason=row.reason,
                evidence_json=row.evidence,
            )
            conn.execute(
                update(audit_events)
                .where(audit_events.c.seq == row.seq)
                .values(actor=who, prev_hash=previous, hash=digest)
            )
            previous = digest
        conn.execute(update(audit_head).values(seq=rows[-1].seq, hash=previous))
    engine.dispose()


def test_deleting_the_newest_event_and_rewinding_the_head_is_caught(
    keel: Keel, project_dir: Path, project: Project
) -> None:
    _events(project, 3)
    code, report, text = _verify(keel, project_dir)
    assert code == 0 and report["ok"], text
    assert report["checkpoints"]["written"]["seq"] == 3  # type: ignore[index]

    _delete_newest(project, keep=2)
    assert project.metadata.audit.verify().ok  # the chain alone cannot tell

    code, report, text = _verify(keel, project_dir)
    assert code == 1
    assert report["broken"] == {
        "seq": 3,
        "rule": "deleted events",
        "detail": report["broken"]["detail"],  # type: ignore[index]
    }
    assert "BROKEN at event 3: deleted events" in text
    assert "the log ends at event 2" in text and "recorded event 3" in text


def test_an_approval_reattributed_with_recomputed_hashes_is_caught(
    keel: Keel, project_dir: Path, project: Project
) -> None:
    _events(project, 4)
    assert _verify(keel, project_dir)[0] == 0
    approval = project.metadata.audit.events(kinds=["release.approved"])[0]
    assert approval.actor == "bea"

    _reattribute(project, approval.seq, actor="carl")
    assert project.metadata.audit.events(kinds=["release.approved"])[0].actor == "carl"
    assert project.metadata.audit.verify().ok  # a consistent chain, rewritten

    code, report, text = _verify(keel, project_dir)
    assert code == 1
    assert report["broken"]["seq"] == 4 and report["broken"]["rule"] == "rewritten history"  # type: ignore[index]
    assert "the log was rewritten at or before event 4" in text


def test_checkpoints_are_written_every_n_events_with_no_verify_run(
    keel: Keel, project_dir: Path, project: Project
) -> None:
    _events(project, 12)
    names = project.artifacts.list_documents(FOLDER)
    assert [int(Path(name).stem) for name in names] == [5, 10]

    _delete_newest(project, keep=8)  # the attacker drops 9 to 12: 10 was checkpointed
    code, report, _ = _verify(keel, project_dir)
    assert code == 1
    assert (report["broken"]["seq"], report["broken"]["rule"]) == (9, "deleted events")  # type: ignore[index]


def test_events_after_the_newest_checkpoint_are_the_documented_gap(
    keel: Keel, project_dir: Path, project: Project
) -> None:
    """What checkpoints do not cover, stated in the docs: the events since the newest one."""
    _events(project, 7)
    _delete_newest(project, keep=6)
    code, report, _ = _verify(keel, project_dir)
    assert code == 0 and report["checkpoints"]["checked"]["seq"] == 5  # type: ignore[index]


def test_a_checkpoint_signed_by_an_unknown_key_is_tampering(
    keel: Keel, project_dir: Path, project: Project
) -> None:
    from keel.audit.checkpoints import Checkpoints
    from keel.keys import KeyRing

    _events(project, 5)
    keys = KeyRing(project_dir.parent / "forger")
    forged = Checkpoints(project.metadata.audit, project.artifacts, keys, every=5)
    forged.write(99, "blake3:" + "ab" * 32)
    forger = keys.signer(create=False)
    code, report, text = _verify(keel, project_dir)
    assert code == 1
    assert report["broken"]["rule"] == "forged checkpoint"  # type: ignore[index]
    assert f"signed by key {forger.key_id}, which is not trusted here" in text


def test_an_edited_checkpoint_is_tampering(keel: Keel, project_dir: Path, project: Project) -> None:
    _events(project, 5)
    path = project_dir / ".keel" / "artifacts" / FOLDER / f"{5:020d}.json"
    assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0  # written read-only
    document = json.loads(path.read_text())
    document["hash"] = "blake3:" + "cd" * 32
    path.chmod(0o644)
    path.write_text(json.dumps(document))
    code, report, text = _verify(keel, project_dir)
    assert code == 1
    assert report["broken"]["rule"] == "forged checkpoint"  # type: ignore[index]
    assert "does not match its content" in text


def test_a_failing_artifact_store_never_fails_the_write_and_is_retried(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = project.settings.state_dir / "artifacts" / "audit"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder: checkpoints cannot be written here")
    with caplog.at_level(logging.WARNING, logger="keel.audit.checkpoints"):
        _events(project, 6)  # 5 is due and fails; 6 retries and fails
    assert project.metadata.audit.head()[0] == 6
    assert "audit checkpoint of event 5 not written" in caplog.text
    blocker.unlink()
    _events(project, 1)  # not a multiple of 5: written because one is owed
    assert [Path(n).stem for n in project.artifacts.list_documents(FOLDER)] == [f"{7:020d}"]


def test_the_listener_runs_after_commit_and_never_for_a_rollback(project: Project) -> None:
    from keel.metadata.sql.audit import SqlAuditLog, append_event
    from keel.metadata.sql.engine import write_transaction

    audit = project.metadata.audit
    assert isinstance(audit, SqlAuditLog)
    seen: list[tuple[int, int]] = []
    audit.on_commit(lambda seq, _: seen.append((seq, audit.head()[0])))
    audit.record(actor="ana", kind="user.changed")
    assert seen == [(1, 1)]  # another connection sees the event: it has committed
    with pytest.raises(RuntimeError), write_transaction(audit._engine) as conn:
        append_event(conn, actor="ana", kind="user.changed")
        raise RuntimeError("the change the event records failed")
    audit.record(actor="ana", kind="user.changed")
    assert seen == [(1, 1), (2, 2)]


def test_verify_on_a_machine_with_only_the_public_key_checks_but_writes_none(
    keel: Keel, project_dir: Path, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    _events(project, 5)
    public_only = project_dir.parent / "public-only"
    public_only.mkdir(mode=0o700)
    (public_only / "signing.pub").write_bytes((project.keys.folder / "signing.pub").read_bytes())
    monkeypatch.setenv("KEEL_KEYS", str(public_only))
    _events(project, 1)
    code, report, text = _verify(keel, project_dir)
    assert code == 0 and report["checkpoints"]["checked"]["seq"] == 5  # type: ignore[index]
    assert report["checkpoints"]["written"] is None  # type: ignore[index]
    assert "checkpoint not written: no signing key" in text
    assert [p.name for p in public_only.iterdir()] == ["signing.pub"]  # made no key of its own


def test_the_api_verify_checks_the_newest_checkpoint_and_writes_none(
    project_dir: Path, project: Project
) -> None:
    import urllib.request

    from keel.web.api import create_api
    from keel.web.server import run_in_thread

    identities = project.metadata.identities
    identities.add_user("vi", ["viewer"], actor="root")
    token = identities.create_token("vi", actor="root")
    _events(project, 3)
    head, _ = project.metadata.audit.head()
    project.audit_checkpoints.verify(project.metadata.audit.verify())  # as the CLI's verify does
    _delete_newest(project, keep=head - 1)
    with run_in_thread(create_api(project)) as url:
        request = urllib.request.Request(  # noqa: S310 - the test's own loopback server
            f"{url}/api/v1/audit-log/verify", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request) as answer:  # noqa: S310 - the same
            document = json.load(answer)
    assert document["ok"] is False
    assert (document["broken"]["seq"], document["broken"]["rule"]) == (head, "deleted events")
    assert document["checkpoints"]["written"] is None
    names = project.artifacts.list_documents(FOLDER)
    assert [int(Path(name).stem) for name in names] == [head]


@pytest.mark.s3
def test_checkpoints_in_an_s3_artifact_store(
    keel: Keel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: S3Server
) -> None:
    """The same attack caught with the checkpoints in S3 (moto's server on loopback)."""
    monkeypatch.setenv("KEEL_ARTIFACTS", s3_server.url())
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_server.region)
    folder = tmp_path / "p"
    assert keel("init", folder, "--name", "flights").code == 0
    with Project.open(folder) as project:
        assert project.artifacts.backend == "s3"
        _events(project, 3)
        code, report, _ = _verify(keel, folder)
        assert code == 0 and report["checkpoints"]["written"]["seq"] == 3  # type: ignore[index]
        assert project.artifacts.list_documents(FOLDER) == [f"{FOLDER}/{3:020d}.json"]
        _delete_newest(project, keep=2)
    code, report, _ = _verify(keel, folder)
    assert code == 1
    assert (report["broken"]["seq"], report["broken"]["rule"]) == (3, "deleted events")  # type: ignore[index]
