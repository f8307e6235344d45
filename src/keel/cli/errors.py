"""Exit codes: those of errors come from `keel.errors.ERROR_CODES`; 0 and 70 are the CLI's own."""

from __future__ import annotations

from typing import Final

from keel.errors import (
    ApprovalRequired,
    ConfigError,
    Conflict,
    ContractViolation,
    DependencyMissing,
    KeelError,
    NotFound,
    PermissionDenied,
    StoreError,
    UserCodeError,
    error_code,
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
    "exit_code_for",
]

EXIT_OK: Final = 0
# The codes an error maps to come from the one table in keel.errors; named here for commands
# that end with them without raising.
#: A check ran and said no: contract violated, gate failed, integrity broken, store unhealthy.
EXIT_CHECK_FAILED: Final = error_code(ContractViolation).exit_code
#: The command line or keel.yaml is wrong.
EXIT_USAGE: Final = error_code(ConfigError).exit_code
EXIT_NOT_FOUND: Final = error_code(NotFound).exit_code
EXIT_CONFLICT: Final = error_code(Conflict).exit_code
EXIT_PERMISSION: Final = error_code(PermissionDenied).exit_code
EXIT_STORE: Final = error_code(StoreError).exit_code
EXIT_DEPENDENCY: Final = error_code(DependencyMissing).exit_code
#: The operation waits for an approval.
EXIT_PENDING: Final = error_code(ApprovalRequired).exit_code
#: The project's own code (an entry point) raised, failed to import or returned the wrong thing.
EXIT_USER_CODE: Final = error_code(UserCodeError).exit_code
#: A bug in keel: the message asks for a report, KEEL_DEBUG=1 shows the traceback.
EXIT_INTERNAL: Final = 70


def exit_code_for(error: KeelError) -> int:
    return error_code(error).exit_code
