"""SQLAlchemy engines for the metadata store: SQLite (embedded default) and PostgreSQL.

The URL comes from `KEEL_DB_URL` (or the project default, a SQLite file in `.keel/`).
Everything backend-specific about connecting lives here, so the store and the
migrations see one plain `Engine`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import ConnectionPoolEntry

from keel.errors import ConfigError, DependencyMissing, StoreError

__all__ = [
    "AUDIT_LISTENER",
    "READ_ONLY",
    "after_commit",
    "backend_of",
    "create_metadata_engine",
    "describe_target",
    "exposed_sqlite_files",
    "read_transaction",
    "redact_url",
    "sqlite_files",
    "translate_errors",
    "write_transaction",
]

#: Execution option marking a connection whose transactions only read. On SQLite they
#: start with a plain (deferred) BEGIN instead of taking the write lock.
READ_ONLY: Final = "keel_read_only"

#: Engine execution option: called with (seq, hash) of each audit event a write
#: transaction appended, once that transaction has committed (audit checkpoints).
AUDIT_LISTENER: Final = "keel_audit_listener"
#: Key of `Connection.info` holding what runs after the current transaction commits.
_AFTER_COMMIT: Final = "keel.after_commit"

#: How long a SQLite writer waits for another process's write lock before failing.
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000

#: How long a PostgreSQL connection attempt may take, unless the URL says otherwise.
POSTGRES_CONNECT_TIMEOUT_S: Final = 10

_URL_PASSWORD = re.compile(r"(?<=://)([^:/@]*):[^@]*@")
_MASK: Final = "KEELREDACTED"  # survives URL quoting, unlike "***"
_SECRET_QUERY_KEYS: Final = frozenset({"password", "passwd", "sslpassword"})


def redact_url(url: str | URL) -> str:
    """The URL as text with any password replaced by `***`, safe to log or show."""
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError:
        # Not a URL SQLAlchemy understands; still never echo what looks like a password.
        return _URL_PASSWORD.sub(r"\1:***@", str(url))
    secret_keys = [key for key in parsed.query if key.lower() in _SECRET_QUERY_KEYS]
    if secret_keys:
        parsed = parsed.update_query_dict(dict.fromkeys(secret_keys, _MASK))
    return parsed.render_as_string(hide_password=True).replace(_MASK, "***")


def backend_of(url: URL) -> str:
    """`"sqlite"` or `"postgresql"`; `ConfigError` for anything else."""
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"KEEL_DB_URL: unsupported database scheme '{url.drivername}'",
            problems=[("KEEL_DB_URL", "scheme must be sqlite:// or postgresql://")],
            hint="use sqlite:///path/to/keel.db or postgresql://user@host:5432/dbname",
        )
    return backend


def describe_target(url: URL) -> str:
    """Where the database is, in words for an error message (never the password)."""
    if url.get_backend_name() == "sqlite":
        return f"the SQLite metadata store at {url.database}"
    host = url.host or "localhost"
    port = url.port or 5432
    return f"the PostgreSQL metadata store at {host}:{port}, database '{url.database}'"


def create_metadata_engine(url: str | URL) -> Engine:
    """An `Engine` for a `sqlite:///path` or `postgresql://...` URL.

    Connecting is lazy: a wrong host shows up at first use, as `StoreError`
    (see `translate_errors`).
    """
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError as exc:
        raise ConfigError(
            f"KEEL_DB_URL: cannot parse '{redact_url(str(url))}' as a database URL",
            problems=[("KEEL_DB_URL", "must be a URL such as sqlite:///path/to/keel.db")],
        ) from exc
    if backend_of(parsed) == "sqlite":
        return _sqlite_engine(parsed)
    return _postgres_engine(parsed)


@contextmanager
def translate_errors(url: URL) -> Iterator[None]:
    """Turn driver failures to reach or use the database into `StoreError`.

    Only operational failures (unreachable server, locked, unreadable or foreign file,
    dropped connection) are translated; programming errors keep their own type.
    """
    try:
        yield
    except sa_exc.OperationalError as exc:
        raise _store_error(url, exc) from exc
    except sa_exc.DBAPIError as exc:
        # The bare DatabaseError (no subclass) is how SQLite reports a corrupt file or
        # one that is not a database at all.
        if exc.connection_invalidated or type(exc) is sa_exc.DatabaseError:
            raise _store_error(url, exc) from exc
        raise


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that may write: committed on success, rolled back on any error.

    On SQLite it holds the database's write lock from its first statement, so
    concurrent writers (threads or processes) wait their turn for up to 30 s.
    """
    hooks: list[Callable[[], None]] = []
    with translate_errors(engine.url), engine.begin() as connection:
        try:
            yield connection
        finally:
            # Taken off in every case: `info` outlives the transaction with the pooled
            # connection, and a rolled-back transaction's hooks must never run.
            hooks = connection.info.pop(_AFTER_COMMIT, [])
    for hook in hooks:
        hook()


def after_commit(connection: Connection, hook: Callable[[], None]) -> None:
    """Run `hook` once the write transaction of `connection` has committed (never if it
    rolls back): work that must not hold the transaction open, such as writing elsewhere."""
    connection.info.setdefault(_AFTER_COMMIT, []).append(hook)


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that only reads: one consistent snapshot, no write lock."""
    with translate_errors(engine.url), engine.connect() as connection:
        connection.execution_options(**{READ_ONLY: True})
        with connection.begin():
            yield connection


def _store_error(url: URL, exc: sa_exc.DBAPIError) -> StoreError:
    reason = " ".join(str(exc.orig).split()) if exc.orig is not None else str(exc)
    if url.password:
        reason = reason.replace(str(url.password), "***")
    if url.get_backend_name() != "sqlite":
        hint = "check that the server is running and reachable, and that KEEL_DB_URL is right"
    elif "locked" in reason:
        seconds = SQLITE_BUSY_TIMEOUT_MS // 1000
        hint = f"another process kept the database busy for over {seconds} s; try again"
    else:
        hint = "check that the folder exists and is writable, and that the file is a keel database"
    return StoreError(f"cannot use {describe_target(url)}: {reason}", hint=hint)


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        raise ConfigError(
            "KEEL_DB_URL: an in-memory SQLite database cannot be shared between processes",
            problems=[("KEEL_DB_URL", "sqlite URLs must name a file: sqlite:///path/to/keel.db")],
        )
    if url.drivername not in ("sqlite", "sqlite+pysqlite"):
        raise ConfigError(
            f"KEEL_DB_URL: unsupported SQLite driver '{url.drivername}'",
            problems=[("KEEL_DB_URL", "use sqlite:///path/to/keel.db")],
        )
    path = Path(database).expanduser()
    url = url.set(database=str(path))  # sqlite3 itself would take '~' literally
    folder = path.parent
    try:
        # Owner only: the database holds users, token hashes, webhook endpoints and the
        # audit log. Only the folder keel creates; an existing one is the user's choice.
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise StoreError(
            f"cannot use {describe_target(url)}: cannot create the folder {folder}: {exc}",
            hint="check that KEEL_DB_URL names a path you may write to",
        ) from exc
    _keep_private(path)
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # pysqlite's own transaction handling issues a deferred BEGIN only before DML;
        # switch it off so that the "begin" hook below decides how each transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first: the journal-mode switch on a fresh file may itself wait.
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            # FULL: a commit is on disk before it is acknowledged, so a promotion or an
            # approval survives a power cut too, not only a process crash (NORMAL in WAL
            # mode may lose the last commits then). Bulk writers batch to amortise it.
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that reads and then writes cannot wait for the write
        # lock (SQLite answers "database is locked" at once, busy_timeout or not), so
        # writers take the lock up front and queue behind each other instead.
        if conn.get_execution_options().get(READ_ONLY, False):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def sqlite_files(path: Path) -> list[Path]:
    """A SQLite database and the files WAL mode keeps beside it."""
    return [path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")]


def _keep_private(path: Path) -> None:
    """Create the database file 0o600 before SQLite does (it would use 0o644, and gives
    its -wal and -shm files the database's mode), and take group and other access away
    from existing files this user owns. Files of another owner are left as they are
    (`exposed_sqlite_files` reports them)."""
    with suppress(OSError):  # exists already, or a folder SQLite will fail on clearly
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    if os.name != "posix":
        return
    for file in sqlite_files(path):
        with suppress(OSError):  # gone meanwhile, or not ours to change
            stat = file.stat()
            if stat.st_uid == os.getuid() and stat.st_mode & 0o077:
                file.chmod(stat.st_mode & 0o700)


def exposed_sqlite_files(url: str) -> list[str]:
    """Warnings for a SQLite metadata database (or its -wal/-shm) others may read."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or os.name != "posix":
        return []
    warnings = []
    for file in sqlite_files(Path(parsed.database).expanduser()):
        with suppress(OSError):
            mode = file.stat().st_mode & 0o777
            if mode & 0o077:
                warnings.append(
                    f"the metadata database file {file} may be read by other users "
                    f"(mode {mode:04o}; keel keeps it 0600): chmod 600 {file}"
                )
    return warnings


def _postgres_engine(url: URL) -> Engine:
    try:
        import psycopg  # noqa: F401  (only probing that the driver is installed)
    except ImportError as exc:
        raise DependencyMissing("psycopg", "postgres", "The PostgreSQL metadata store") from exc
    if url.drivername == "postgresql":
        # Plain postgresql:// would pick psycopg2 in SQLAlchemy; keel ships psycopg 3.
        url = url.set(drivername="postgresql+psycopg")
    elif url.drivername != "postgresql+psycopg":
        raise ConfigError(
            f"KEEL_DB_URL: unsupported PostgreSQL driver '{url.drivername}'",
            problems=[("KEEL_DB_URL", "use postgresql:// or postgresql+psycopg://")],
        )
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_S
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
