"""keel's exceptions: one tree, so callers catch what they mean.

    KeelError                      anything keel raises on purpose
     ├── ConfigError               keel.yaml, settings or a flag is wrong (names key path and rule)
     ├── DataError                 input data cannot be read (names the file and the rule)
     ├── NotFound                  a project, object, version or id that does not exist
     ├── Conflict                  someone else changed it first (races, duplicate names)
     ├── IntegrityError            stored bytes or records do not match their hash or chain
     ├── StoreError                a store is unreachable or refused the operation
     │    └── StoreRefused         the store refused what was written (a value it cannot hold)
     ├── DependencyMissing         an optional extra is needed (names the extra to install)
 ├── EngineError               the engine doing data work (Spark) failed a job or could not
 │                             start (names the engine and the failure)
     ├── ContractViolation         data broke its contract
     ├── GateFailed                a release gate refused a promotion
     ├── ApprovalRequired          a promotion waits for approval
     ├── PermissionDenied          the acting identity may not do this
     └── UserCodeError             the project's own code (an entry point) raised or returned
                                   what keel cannot use (names entry point, file and line)

Every message says what is wrong and, where there is one, what to do next.

Each class has one row in `ERROR_CODES` (at the end): the `code` that `--json` output and HTTP
error documents carry, the CLI's exit code and the HTTP status. The CLI (`keel.cli.errors`) and
every HTTP app (`/api/v1`, the web UI, `keel serve`) derive theirs from that one table, so an
interface cannot drift from the others; the exceptions themselves carry no status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

__all__ = [
    "ERROR_CODES",
    "ApprovalRequired",
    "ConfigError",
    "Conflict",
    "ContractViolation",
    "DataError",
    "DependencyMissing",
    "EngineError",
    "ErrorCode",
    "GateFailed",
    "IntegrityError",
    "KeelError",
    "NotFound",
    "PermissionDenied",
    "StoreError",
    "StoreRefused",
    "UserCodeError",
    "error_code",
]


class KeelError(Exception):
    """Base of every error keel raises on purpose.

    `hint` is the next step for the user, shown by the CLI under the message.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(KeelError):
    """keel.yaml, a setting or a command-line value is invalid.

    `problems` holds one `(key_path, rule)` pair per invalid key, e.g.
    `("release.gates", "expected a list, got 12")`.
    """

    def __init__(
        self,
        message: str,
        *,
        problems: list[tuple[str, str]] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems or []


class DataError(KeelError):
    """Data could not be read: the message names the file and the rule it broke.

    `path` is the offending file (or the pattern that matched nothing), for callers that
    want to show it apart from the message.
    """

    def __init__(
        self, message: str, *, path: str | Path | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = None if path is None else str(path)


class NotFound(KeelError):
    """The thing asked for does not exist."""


class Conflict(KeelError):
    """The operation lost a race or collides with existing state; nothing was changed."""


class IntegrityError(KeelError):
    """Stored data does not match its content hash or its audit chain."""


class StoreError(KeelError):
    """A metadata or artifact store could not be reached or refused an operation."""


class StoreRefused(StoreError):
    """The store is up but refused the content written (a value it cannot hold, a broken
    constraint): the same write fails again however often it is retried."""


class DependencyMissing(KeelError):
    """An optional dependency is not installed; the message names the extra."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the Python package '{package}', which is not installed",
            hint=f"pip install 'keelml[{extra}]'",
        )
        self.package = package
        self.extra = extra


class EngineError(KeelError):
    """The engine doing data work (`--engine spark`) failed: it could not start, or a job
    died (a task raised, an executor was lost). Nothing was recorded; running again may pass.
    `engine` names it (`spark`)."""

    def __init__(self, message: str, *, engine: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.engine = engine


class ContractViolation(KeelError):
    """Data broke its contract."""


class GateFailed(KeelError):
    """A release gate refused a promotion."""


class ApprovalRequired(KeelError):
    """The promotion is waiting for an approval."""


class PermissionDenied(KeelError):
    """The acting identity is not allowed to do this."""


class UserCodeError(KeelError):
    """The project's code failed: an entry point (`features:build`, `train:train`) raised, could
    not be imported, or returned what keel cannot use.

    `file` and `line` locate the innermost frame in the user's folder (or the function's
    definition when it returned the wrong thing), `exception` is the type raised, `expected`
    what keel needed back, and `extra` the keel extra that installs a missing library.
    """

    def __init__(
        self,
        message: str,
        *,
        entry_point: str,
        file: str | None = None,
        line: int | None = None,
        exception: str | None = None,
        expected: str | None = None,
        extra: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.entry_point = entry_point
        self.file = file
        self.line = line
        self.exception = exception
        self.expected = expected
        self.extra = extra


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """How every interface reports one kind of error."""

    #: Stable machine-readable name: `error.code` in `--json` output and HTTP error bodies.
    code: str
    #: The CLI's exit status (docs/cli.md, "Exit codes").
    exit_code: int
    #: The HTTP status of `/api/v1`, the web UI and `keel serve`'s routes.
    http_status: int


#: One row per class of the tree. A subclass without a row (one defined outside this module)
#: is reported as its nearest ancestor that has one. `ApprovalRequired` is 409 over HTTP: the
#: state of the release, not the request, stands in the way (promotion itself answers 202).
ERROR_CODES: Final[Mapping[type[KeelError], ErrorCode]] = MappingProxyType(
    {
        KeelError: ErrorCode("error", 1, 500),
        ConfigError: ErrorCode("config_error", 2, 400),
        DataError: ErrorCode("data_error", 2, 400),
        NotFound: ErrorCode("not_found", 3, 404),
        Conflict: ErrorCode("conflict", 4, 409),
        PermissionDenied: ErrorCode("permission_denied", 5, 403),
        StoreError: ErrorCode("store_error", 6, 503),
        StoreRefused: ErrorCode("store_error", 6, 503),
        DependencyMissing: ErrorCode("dependency_missing", 7, 500),
        ApprovalRequired: ErrorCode("approval_required", 8, 409),
        UserCodeError: ErrorCode("user_code_error", 9, 500),
        EngineError: ErrorCode("engine_error", 10, 502),
        ContractViolation: ErrorCode("contract_violation", 1, 422),
        GateFailed: ErrorCode("gate_failed", 1, 422),
        IntegrityError: ErrorCode("integrity_error", 1, 500),
    }
)


def error_code(error: KeelError | type[KeelError]) -> ErrorCode:
    """The row of `ERROR_CODES` for an error (or an error class): its own, else its nearest
    ancestor's."""
    kind = error if isinstance(error, type) else type(error)
    for ancestor in kind.__mro__:
        row = ERROR_CODES.get(ancestor)
        if row is not None:
            return row
    raise TypeError(f"{kind.__name__} is not a KeelError")
