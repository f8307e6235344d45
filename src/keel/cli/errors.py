"""Exit codes, mapped from keel's error tree here and nowhere else."""

from __future__ import annotations

from typing import Final

from keel.errors import (
    ApprovalRequired,
    ConfigError,
    Conflict,
    ContractViolation,
    DataError,
    DependencyMissing,
    GateFailed,
    IntegrityError,
    KeelError,
    NotFound,
    PermissionDenied,
    StoreError,
    UserCodeError,
)

__all__ = [
    "EXIT_CHECK_FAILED",
    "EXIT_CONFLICT",
    "EXIT_DEPENDENCY",
    "EXIT_INTERNAL",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_PENDING",
    "EXIT_PERMISSION",
    "EXIT_STORE",
    "EXIT_USAGE",
    "EXIT_USER_CODE",
    "error_code",
    "exit_code_for",
]

EXIT_OK: Final = 0
#: A check ran and said no: contract violated, gate failed, integrity broken, store unhealthy.
EXIT_CHECK_FAILED: Final = 1
#: The command line or keel.yaml is wrong.
EXIT_USAGE: Final = 2
EXIT_NOT_FOUND: Final = 3
EXIT_CONFLICT: Final = 4
EXIT_PERMISSION: Final = 5
EXIT_STORE: Final = 6
EXIT_DEPENDENCY: Final = 7
#: The operation waits for an approval.
EXIT_PENDING: Final = 8
#: The project's own code (an entry point) raised, failed to import or returned the wrong thing.
EXIT_USER_CODE: Final = 9
#: A bug in keel: the message asks for a report, KEEL_DEBUG=1 shows the traceback.
EXIT_INTERNAL: Final = 70

_CODES: Final[tuple[tuple[type[KeelError], int, str], ...]] = (
    (UserCodeError, EXIT_USER_CODE, "user_code_error"),
    (ConfigError, EXIT_USAGE, "config_error"),
    (DataError, EXIT_USAGE, "data_error"),
    (NotFound, EXIT_NOT_FOUND, "not_found"),
    (Conflict, EXIT_CONFLICT, "conflict"),
    (PermissionDenied, EXIT_PERMISSION, "permission_denied"),
    (StoreError, EXIT_STORE, "store_error"),
    (DependencyMissing, EXIT_DEPENDENCY, "dependency_missing"),
    (ApprovalRequired, EXIT_PENDING, "approval_required"),
    (ContractViolation, EXIT_CHECK_FAILED, "contract_violation"),
    (GateFailed, EXIT_CHECK_FAILED, "gate_failed"),
    (IntegrityError, EXIT_CHECK_FAILED, "integrity_error"),
)


def exit_code_for(error: KeelError) -> int:
    for kind, code, _ in _CODES:
        if isinstance(error, kind):
            return code
    return EXIT_CHECK_FAILED


def error_code(error: KeelError) -> str:
    """A stable machine-readable name for the error, used in `--json` output."""
    for kind, _, name in _CODES:
        if isinstance(error, kind):
            return name
    return "error"
