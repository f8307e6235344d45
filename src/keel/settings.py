"""Settings: one frozen object built from `KEEL_*` environment variables and keel.yaml.

Built once at the edge (CLI, server, notebook) and passed in; nothing deeper reads the
environment. Precedence, highest first: environment variable, keel.yaml `storage:`, default.

| variable        | meaning                                   | default                          |
| --------------- | ----------------------------------------- | -------------------------------- |
| KEEL_PROJECT    | the project folder (holds keel.yaml)      | nearest keel.yaml from the cwd up|
| KEEL_DB_URL     | metadata store, a SQLAlchemy URL          | sqlite:///<project>/.keel/keel.db|
| KEEL_ARTIFACTS  | artifact store: a folder or s3://bucket/p | <project>/.keel/artifacts        |
| KEEL_USER       | the acting identity for local CLI use     | the operating-system user        |
| KEEL_DEBUG      | `1` shows tracebacks for internal errors  | off                              |
| KEEL_KEYS       | keel's keys (signing, secrets at rest)    | <project>/.keel/keys             |

KEEL_OPENLINEAGE_URL: where training runs send OpenLineage events, an http(s) URL (Marquez,
DataHub) or a JSON-lines file; default <project>/.keel/lineage/events.jsonl.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from keel.errors import ConfigError
from keel.spec import SPEC_FILENAME, ProjectSpec

__all__ = ["KNOWN_VARIABLES", "STATE_DIR", "Settings", "find_project_dir"]

STATE_DIR: Final = ".keel"
KNOWN_VARIABLES: Final = frozenset(
    {
        "KEEL_PROJECT",
        "KEEL_DB_URL",
        "KEEL_ARTIFACTS",
        "KEEL_USER",
        "KEEL_DEBUG",
        "KEEL_OPENLINEAGE_URL",
        "KEEL_KEYS",
        "KEEL_SERVE_WORKERS",
    }
)
# Variables keel's own test suite reads; never a typo worth a warning.
_TEST_PREFIXES: Final = ("KEEL_TEST_", "KEEL_REQUIRE_")


def find_project_dir(start: Path, env: Mapping[str, str]) -> Path:
    """The folder holding keel.yaml: `KEEL_PROJECT`, else `start` or its nearest parent."""
    explicit = env.get("KEEL_PROJECT")
    if explicit:
        return Path(explicit).expanduser().resolve()
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / SPEC_FILENAME).is_file():
            return folder
    raise ConfigError(
        f"no {SPEC_FILENAME} in {start} or any parent folder",
        hint="run `keel init` to create a project here, or pass --project DIR",
    )


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        # Containers often run a uid with no passwd entry; still name the actor.
        return f"uid-{os.getuid()}"


def _resolve_location(value: str, project_dir: Path) -> str:
    """Make a relative folder or SQLite path absolute against the project folder."""
    if "://" in value:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (project_dir / path).resolve())


def _keys_dir(value: str, project_dir: Path) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else (project_dir / path).resolve()


def _resolve_db_url(value: str, project_dir: Path) -> str:
    prefix = "sqlite:///"
    if value.startswith(prefix) and not value.startswith("sqlite:////"):
        relative = value[len(prefix) :]
        if relative and relative != ":memory:":
            return prefix + str((project_dir / relative).resolve())
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything keel needs to know about where it runs and as whom."""

    project_dir: Path
    db_url: str
    artifacts_url: str
    user: str
    debug: bool = False
    #: `KEEL_*` variables that keel does not know: likely typos, shown by `keel status`.
    unknown_variables: tuple[str, ...] = field(default=())
    #: Where OpenLineage events go: an http(s) URL, or a JSON-lines file (None: the default file).
    openlineage: str | None = None
    #: The folder of keel's keys (`keel.keys`); kept out of the metadata store on purpose.
    keys: Path | None = None

    @property
    def keys_dir(self) -> Path:
        return self.keys if self.keys is not None else self.state_dir / "keys"

    @property
    def spec_path(self) -> Path:
        return self.project_dir / SPEC_FILENAME

    @property
    def state_dir(self) -> Path:
        return self.project_dir / STATE_DIR

    @classmethod
    def load(cls, project_dir: Path, spec: ProjectSpec, env: Mapping[str, str]) -> Settings:
        """Combine the environment, keel.yaml's `storage:` section and the defaults."""
        project_dir = project_dir.resolve()
        state = project_dir / STATE_DIR
        db_url = env.get("KEEL_DB_URL") or spec.storage.db_url or f"sqlite:///{state / 'keel.db'}"
        artifacts = env.get("KEEL_ARTIFACTS") or spec.storage.artifacts or str(state / "artifacts")
        user = env.get("KEEL_USER", "").strip() or _os_user()
        debug = env.get("KEEL_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}
        unknown = tuple(
            sorted(
                name
                for name in env
                if name.startswith("KEEL_")
                and name not in KNOWN_VARIABLES
                and not name.startswith(_TEST_PREFIXES)
            )
        )
        return cls(
            project_dir=project_dir,
            db_url=_resolve_db_url(db_url, project_dir),
            artifacts_url=_resolve_location(artifacts, project_dir),
            user=user,
            debug=debug,
            unknown_variables=unknown,
            openlineage=env.get("KEEL_OPENLINEAGE_URL", "").strip() or None,
            keys=_keys_dir(env.get("KEEL_KEYS", "").strip(), project_dir),
        )
