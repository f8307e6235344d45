"""Signed checkpoints of the audit log's head, kept in the artifact store.

The hash chain shows an edited, inserted or reordered event, but whoever can write the
database can also delete the newest events and rewind `audit_head`, or rewrite history and
recompute every hash after it: the chain then holds again. A checkpoint pins the head
outside the database: the newest event's seq and hash, with the time, signed with the
project's Ed25519 key (`KEEL_KEYS`, never the database) and stored write-once as
`audit/checkpoints/<seq>.json` in the artifact store. `keel audit-log verify` then checks
that the event a checkpoint names still exists with the hash it recorded.

Checkpoints are written after every `release.audit_checkpoint_every`-th event (once its
transaction has committed: appends never wait on the artifact store) and by every
`keel audit-log verify` of a chain that holds. A checkpoint that cannot be written is
logged and tried again at the next event, never failing the write that triggered it.

What they do not protect: events after the newest checkpoint (at most the interval) can
still be dropped by a database writer; whoever holds both the private key and write access
to the artifact store can sign a rewritten history.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from keel.domain.audit import ChainBreak, ChainReport
from keel.errors import ConfigError, Conflict, IntegrityError, KeelError

if TYPE_CHECKING:
    from keel.artifacts.base import ArtifactStore
    from keel.keys import KeyRing
    from keel.metadata.base import AuditLog

__all__ = ["FOLDER", "Checkpoint", "CheckpointCheck", "Checkpoints"]

#: Where checkpoints live in the artifact store.
FOLDER: Final = "audit/checkpoints"
#: The document's version tag, independent of keel's module paths.
FORMAT: Final = "keel.audit-checkpoint/1"
#: Zero-padded, so names sort by seq in every listing.
_NAME: Final = re.compile(r"^audit/checkpoints/(\d{20})\.json$")

_log = logging.getLogger(__name__)


def name_of(seq: int) -> str:
    return f"{FOLDER}/{seq:020d}.json"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The audit log's head at one moment, as signed."""

    seq: int
    hash: str
    at: datetime
    key_id: str = ""

    def body(self) -> bytes:
        """The exact bytes signed: canonical JSON of the checkpoint without its signature."""
        return json.dumps(
            {"format": FORMAT, "seq": self.seq, "hash": self.hash, "at": self.at.isoformat()},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "at": self.at.isoformat(), "key": self.key_id}


@dataclass(frozen=True, slots=True)
class CheckpointCheck:
    """What verify found about the checkpoints: the newest one checked, the one written."""

    checked: Checkpoint | None
    written: Checkpoint | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked": None if self.checked is None else self.checked.to_dict(),
            "written": None if self.written is None else self.written.to_dict(),
            "note": self.note,
        }


class Checkpoints:
    """The checkpoints of one project: written on commit and on verify, checked on verify."""

    def __init__(
        self, audit: AuditLog, artifacts: ArtifactStore, keys: KeyRing, *, every: int
    ) -> None:
        self._audit = audit
        self._artifacts = artifacts
        self._keys = keys
        self._every = every
        self._lock = threading.Lock()
        self._pending = False
        self._warned = False

    # --- writing ---------------------------------------------------------------------------

    def committed(self, seq: int, digest: str) -> None:
        """An audit event was committed: checkpoint it if it is the N-th, or if an earlier
        checkpoint failed. Never raises: the write it follows has been acknowledged."""
        if seq % self._every != 0 and not self._pending:
            return
        try:
            with self._lock:
                self.write(seq, digest)
            self._pending = self._warned = False
        except Exception as exc:  # noqa: BLE001 - any failure is retried at the next event
            self._pending = True
            level = logging.DEBUG if self._warned else logging.WARNING
            self._warned = True
            _log.log(
                level,
                "audit checkpoint of event %d not written (%s); retried at the next event "
                "and by `keel audit-log verify`",
                seq,
                exc,
            )

    def write(self, seq: int, digest: str) -> Checkpoint:
        """Sign and store a checkpoint of event `seq` with hash `digest` (kept as it is when
        one exists already: the first writer wins)."""
        signer = self._keys.signer(create=not any(self._keys.folder.glob("*.pub")))
        checkpoint = Checkpoint(seq, digest, datetime.now(UTC), signer.key_id)
        body = checkpoint.body()
        document = {
            "format": FORMAT,
            "seq": seq,
            "hash": digest,
            "at": checkpoint.at.isoformat(),
            "signature": signer.sign(body).to_dict(),
        }
        data = json.dumps(document, sort_keys=True, indent=1).encode() + b"\n"
        try:
            self._artifacts.create_document(name_of(seq), data)
        except Conflict:
            return self.read(name_of(seq), verify=False)
        return checkpoint

    # --- reading and checking --------------------------------------------------------------

    def newest(self) -> str | None:
        """The name of the newest checkpoint, or None when there is none."""
        names = [n for n in self._artifacts.list_documents(FOLDER) if _NAME.match(n)]
        return names[-1] if names else None

    def read(self, name: str, *, verify: bool = True) -> Checkpoint:
        """The checkpoint stored as `name`; `IntegrityError` naming it for anything that is
        not a checkpoint signed by a trusted key, or whose name and content disagree."""
        from keel.keys import Signature

        where = f"audit checkpoint {self._artifacts.url}/{name}"
        try:
            document = json.loads(self._artifacts.read_document(name))
            seq, digest = document["seq"], document["hash"]
            at = datetime.fromisoformat(document["at"])
            if document["format"] != FORMAT or not isinstance(seq, int):
                raise ValueError(document["format"])
            if not isinstance(digest, str):
                raise TypeError(digest)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise IntegrityError(f"{where} is not a keel audit checkpoint ({FORMAT})") from None
        signature = Signature.from_dict(document.get("signature"), where=where)
        checkpoint = Checkpoint(seq, digest, at, signature.key_id)
        if verify:
            self._keys.verifier().verify(checkpoint.body(), signature, what=where)
        match = _NAME.match(name)
        if match is None or int(match.group(1)) != seq:
            raise IntegrityError(f"{where} records event {seq}, not the one its name says")
        return checkpoint

    def verify(
        self, report: ChainReport, *, write: bool = True
    ) -> tuple[ChainReport, CheckpointCheck]:
        """Check the newest checkpoint against the log, then (with `write`) checkpoint the
        head `report` found if the chain holds. The report comes back broken for a checkpoint
        that is itself forged, or for events it recorded that are gone or changed."""
        name = self.newest()
        checked: Checkpoint | None = None
        if name is not None:
            try:
                checked = self.read(name)
            except IntegrityError as exc:
                seq = int(_NAME.match(name).group(1))  # type: ignore[union-attr]
                return _broken(report, seq, "forged checkpoint", exc.message), CheckpointCheck(
                    None, None
                )
            broken = self._compare(checked)
            if broken is not None:
                return _broken(report, *broken), CheckpointCheck(checked, None)
        if not report.ok or report.head_seq == 0 or not write:
            return report, CheckpointCheck(checked, None)
        if checked is not None and checked.seq >= report.head_seq:
            return report, CheckpointCheck(checked, None, "the head is checkpointed already")
        try:
            written = self.write(report.head_seq, report.head_hash)
        except (KeelError, OSError) as exc:
            message = exc.message if isinstance(exc, KeelError) else str(exc)
            if isinstance(exc, ConfigError) and exc.hint:
                message += f" ({exc.hint})"
            return report, CheckpointCheck(checked, None, f"checkpoint not written: {message}")
        return report, CheckpointCheck(checked, written)

    def _compare(self, checkpoint: Checkpoint) -> tuple[int, str, str] | None:
        """Where the log disagrees with `checkpoint` (seq, rule, detail), or None."""
        # Read now, not from verify's snapshot: the checkpoint may be of an event committed
        # after that snapshot was taken.
        found = self._audit.events(after=checkpoint.seq - 1, limit=1)
        event = found[0] if found and found[0].seq == checkpoint.seq else None
        signed = f"the checkpoint signed {checkpoint.at:%Y-%m-%d %H:%M:%S} UTC"
        if event is None:
            head_seq, _ = self._audit.head()
            if head_seq < checkpoint.seq:
                return (
                    head_seq + 1,
                    "deleted events",
                    f"the log ends at event {head_seq}, but {signed} recorded event "
                    f"{checkpoint.seq}: events {head_seq + 1} to {checkpoint.seq} were deleted "
                    "and the head rewound",
                )
            return (
                checkpoint.seq,
                "deleted events",
                f"event {checkpoint.seq}, recorded by {signed}, is missing",
            )
        if event.hash != checkpoint.hash:
            return (
                checkpoint.seq,
                "rewritten history",
                f"event {checkpoint.seq} hashes to {event.hash}, but {signed} recorded "
                f"{checkpoint.hash}: the log was rewritten at or before event {checkpoint.seq}",
            )
        return None


def _broken(report: ChainReport, seq: int, rule: str, detail: str) -> ChainReport:
    if not report.ok:
        return report
    return ChainReport(
        report.events, report.head_seq, report.head_hash, ChainBreak(seq, rule, detail)
    )
