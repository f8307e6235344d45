"""Release requests, decisions, approvals and alias moves."""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from keel.domain.audit import AuditEvent
from keel.domain.identity import Actor
from keel.domain.release import AliasMove, Decision, GateResult, ReleaseRequest

__all__ = ["Releases"]


class Releases(ABC):
    """Alias moves, gate evaluations, release requests and their approvals.

    Every write appends its audit event in the same transaction and takes the model-row
    lock registration takes, so moves of one model's aliases are serialised. Moves are
    compare-and-set on the holder the caller decided against: if the alias moved in
    between, `Conflict` and nothing changes.
    """

    @abstractmethod
    def holder(self, model: str, alias: str) -> int | None:
        """The version holding `alias`, or None."""

    @abstractmethod
    def history(self, model: str, alias: str) -> builtins.list[AliasMove]:
        """Every move, rollback and removal of the alias, oldest first."""

    @abstractmethod
    def record_evaluation(
        self,
        model: str,
        version: int,
        alias: str,
        *,
        holder: int | None,
        results: Sequence[GateResult],
        actor: str,
        extra: Mapping[str, object] | None = None,
    ) -> str:
        """Store gate results (event `gates.evaluated`); returns the evaluation id."""

    @abstractmethod
    def evaluation(self, evaluation_id: str) -> builtins.list[GateResult]:
        """The stored gate results of one evaluation."""

    @abstractmethod
    def move_alias(
        self,
        model: str,
        alias: str,
        version: int,
        *,
        expected_holder: int | None,
        actor: str,
        reason: str | None,
        evidence: Mapping[str, object] | None = None,
    ) -> AuditEvent:
        """Point `alias` at `version` if it still points at `expected_holder`."""

    @abstractmethod
    def rollback(self, model: str, alias: str, *, actor: str, reason: str) -> AuditEvent:
        """Move `alias` back to its previous holder (event `alias.rolled_back`)."""

    @abstractmethod
    def remove_alias(
        self,
        model: str,
        alias: str,
        *,
        expected_holder: int,
        actor: str,
        reason: str,
        evidence: Mapping[str, object] | None = None,
    ) -> AuditEvent:
        """Remove `alias` if it still points at `expected_holder` (event `alias.removed`;
        `Conflict` and nothing changes otherwise). Removing `production` stops serving the
        model; removing `canary` sends all its traffic to production."""

    @abstractmethod
    def promote_canary(
        self,
        model: str,
        version: int,
        *,
        expected_production: int | None,
        actor: str,
        reason: str,
        evidence: Mapping[str, object],
        evaluation: str | None = None,
    ) -> builtins.list[AuditEvent]:
        """In one transaction: `canary.promoted` with the evidence, `production` moved to
        `version` (compare-and-set on `expected_production`), and `canary`, which must still
        hold `version`, removed. Returns the three events."""

    @abstractmethod
    def roll_back_canary(
        self,
        model: str,
        version: int,
        *,
        actor: str,
        reason: str,
        evidence: Mapping[str, object],
    ) -> builtins.list[AuditEvent]:
        """In one transaction: `canary.rolled_back` with the evidence, and `canary`, which
        must still hold `version`, removed. Returns the two events."""

    @abstractmethod
    def open_request(
        self,
        model: str,
        version: int,
        alias: str,
        *,
        holder: int | None,
        evaluation_id: str,
        actor: str,
        reason: str | None,
        ttl: timedelta,
        required: int,
        roles: Sequence[str],
        evidence: Mapping[str, object] | None = None,
    ) -> ReleaseRequest:
        """Record a pending release request (event `release.requested`, with `evidence`
        added to what the store records: e.g. the release owner it notifies)."""

    @abstractmethod
    def request(self, request_id: str) -> ReleaseRequest:
        """One request by id or unique id prefix; `NotFound` otherwise."""

    @abstractmethod
    def requests(
        self,
        *,
        status: str | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[ReleaseRequest]:
        """Requests, newest first."""

    @abstractmethod
    def decide(
        self,
        request_id: str,
        *,
        actor: Actor,
        decision: Decision,
        comment: str | None,
        expected_holder: int | None,
        evaluation_id: str | None = None,
        now: datetime | None = None,
    ) -> tuple[ReleaseRequest, AuditEvent | None]:
        """Record an approval or rejection; the approval that completes the count moves
        the alias (compare-and-set on `expected_holder`) in the same transaction. Returns
        the request as it now is and the alias move, if one happened."""

    @abstractmethod
    def close_request(
        self,
        request_id: str,
        *,
        status: str,
        actor: str,
        outcome: str,
        evidence: Mapping[str, object] | None = None,
    ) -> ReleaseRequest:
        """Close a pending request as expired, superseded or refused, with its event."""
