"""The release workflow: gates evaluated on fresh evidence, approvals, alias moves, rollback."""

from keel.release.service import (
    DecisionResult,
    PromotionResult,
    RollbackResult,
    actor_for,
    approve,
    promote,
    reject,
    rollback,
)

__all__ = [
    "DecisionResult",
    "PromotionResult",
    "RollbackResult",
    "actor_for",
    "approve",
    "promote",
    "reject",
    "rollback",
]
