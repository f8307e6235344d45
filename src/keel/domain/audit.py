"""The audit log's events and their hash chain.

Every registration, gate evaluation, release request, approval, rejection, alias move and
rollback is an `AuditEvent`. Events are numbered without gaps (`seq`) and each carries the
hash of its predecessor, so editing, deleting or reordering any stored event breaks the
chain at that event, which `verify_chain` reports. The hash covers every field as stored
(the evidence as its canonical JSON text), so nothing has to be re-serialised to check it.
Pure: no storage, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import blake3

__all__ = [
    "EVENT_KINDS",
    "GENESIS",
    "AuditEvent",
    "ChainBreak",
    "ChainReport",
    "canonical_evidence",
    "event_hash",
    "verify_chain",
]

#: The hash the first event chains from.
GENESIS: Final = "blake3:" + "0" * 64

#: What can happen, by kind. Later features add kinds (alerts, retraining decisions).
EVENT_KINDS: Final = frozenset(
    {
        "model.registered",
        "model.retired",
        "model.signed",
        "gates.evaluated",
        "release.requested",
        "release.approved",
        "release.rejected",
        "release.expired",
        "release.superseded",
        "release.refused",
        "alias.moved",
        "alias.rolled_back",
        "user.added",
        "user.changed",
        "user.disabled",
        "token.created",
        "token.revoked",
        "webhook.added",
        "webhook.removed",
        "serving.load_failed",
        "serving.predictions_dead_lettered",
        "alert.opened",
        "alert.resolved",
        "alias.removed",
        "retraining.decided",
        "canary.promoted",
        "canary.rolled_back",
        "labels.recorded",
    }
)


def canonical_evidence(evidence: Mapping[str, Any]) -> str:
    """Evidence as canonical JSON text (sorted keys, no NaN): what is stored and hashed."""
    return json.dumps(
        dict(evidence), sort_keys=True, allow_nan=False, separators=(",", ":"), default=str
    )


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One entry of the audit log, as stored."""

    seq: int
    at: datetime
    actor: str
    kind: str
    model: str | None
    version: int | None
    alias: str | None
    subject: str | None
    reason: str | None
    evidence_json: str
    prev_hash: str
    hash: str

    @property
    def evidence(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.evidence_json)
        return loaded

    @property
    def target(self) -> str:
        """What the event is about, for one-line listings: `model@version -> alias`, ..."""
        if self.model is None:
            return self.subject or "-"
        text = self.model if self.version is None else f"{self.model}@{self.version}"
        if self.alias is not None:
            text += f" -> {self.alias}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "kind": self.kind,
            "model": self.model,
            "version": self.version,
            "alias": self.alias,
            "subject": self.subject,
            "reason": self.reason,
            "evidence": self.evidence,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def _moment(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError(f"audit times must be timezone-aware, got {at!r}")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(
    prev_hash: str,
    *,
    seq: int,
    at: datetime,
    actor: str,
    kind: str,
    model: str | None,
    version: int | None,
    alias: str | None,
    subject: str | None,
    reason: str | None,
    evidence_json: str,
) -> str:
    """The hash of an event: BLAKE3 over its predecessor's hash and every field."""
    body = json.dumps(
        [
            prev_hash,
            seq,
            _moment(at),
            actor,
            kind,
            model,
            version,
            alias,
            subject,
            reason,
            evidence_json,
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return "blake3:" + blake3.blake3(body.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first place the chain does not hold, and why."""

    seq: int
    rule: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "rule": self.rule, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What `verify_chain` found: how many events hold, and the first break if any."""

    events: int
    head_seq: int
    head_hash: str
    broken: ChainBreak | None = field(default=None)

    @property
    def ok(self) -> bool:
        return self.broken is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "broken": None if self.broken is None else self.broken.to_dict(),
        }


def verify_chain(events: Iterable[AuditEvent], *, head_seq: int, head_hash: str) -> ChainReport:
    """Check events (in seq order, from the first) against each other and the stored head.

    Detects an edited event (its hash no longer matches its fields), a deleted or inserted
    event (a gap in seq, or a predecessor hash that does not match), and deleted newest
    events (the chain ends before the head says it does).
    """
    expected_seq = 1
    previous = GENESIS
    count = 0
    for event in events:
        count += 1
        if event.seq != expected_seq:
            rule = "missing event" if event.seq > expected_seq else "out of order"
            detail = f"expected event {expected_seq}, found {event.seq}"
            return ChainReport(
                count - 1, head_seq, head_hash, ChainBreak(expected_seq, rule, detail)
            )
        if event.prev_hash != previous:
            return ChainReport(
                count - 1,
                head_seq,
                head_hash,
                ChainBreak(
                    event.seq,
                    "broken link",
                    f"it chains from {event.prev_hash}, but event {event.seq - 1} "
                    f"hashes to {previous}",
                ),
            )
        recomputed = event_hash(
            event.prev_hash,
            seq=event.seq,
            at=event.at,
            actor=event.actor,
            kind=event.kind,
            model=event.model,
            version=event.version,
            alias=event.alias,
            subject=event.subject,
            reason=event.reason,
            evidence_json=event.evidence_json,
        )
        if recomputed != event.hash:
            return ChainReport(
                count - 1,
                head_seq,
                head_hash,
                ChainBreak(
                    event.seq,
                    "edited event",
                    f"its fields hash to {recomputed}, but it records {event.hash}",
                ),
            )
        previous = event.hash
        expected_seq += 1
    last = expected_seq - 1
    if last != head_seq or previous != head_hash:
        rule = "missing newest events" if last < head_seq else "head mismatch"
        return ChainReport(
            count,
            head_seq,
            head_hash,
            ChainBreak(
                last + 1 if last < head_seq else last,
                rule,
                f"the chain ends at event {last} ({previous}), the head records "
                f"event {head_seq} ({head_hash})",
            ),
        )
    return ChainReport(count, head_seq, head_hash)
