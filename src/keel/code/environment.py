"""The runtime environment of a run: interpreter, installed distributions, platform, hardware.

A run records an `EnvironmentLock`; `keel env check` and `keel reproduce` compare a recorded lock
with the current one through `diff_environments`, package by package.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from keel.artifacts.hashing import hash_bytes
from keel.domain.digest import Digest

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = [
    "KIND",
    "LOCK_ARTIFACT",
    "EnvDifference",
    "EnvironmentLock",
    "Gpu",
    "capture_environment",
    "diff_environments",
    "normalise_name",
    "recorded_environment",
]

#: The run artifact holding the lock of the environment the run trained in.
LOCK_ARTIFACT: Final = "environment.json"
#: Document tag of a serialised lock, independent of this module's path.
KIND: Final = "keel/environment"
VERSION: Final = 1

#: nvidia-smi can hang for seconds when a driver is wedged; a run must not wait on it.
_GPU_QUERY_TIMEOUT_S: Final = 5.0

_SEPARATORS = re.compile(r"[-_.]+")


def normalise_name(name: str) -> str:
    """A distribution name as PEP 503 compares them (`Typing_Extensions` -> `typing-extensions`)."""
    return _SEPARATORS.sub("-", name).lower()


@dataclass(frozen=True, slots=True)
class Gpu:
    """One GPU as the driver reports it."""

    name: str
    driver_version: str


@dataclass(frozen=True, slots=True)
class EnvironmentLock:
    """Everything about the machine and interpreter that can change what training produces.

    `packages` is sorted by normalised name. The digest covers the canonical JSON, so two
    captures on an unchanged machine have the same digest.
    """

    python_version: str
    python_implementation: str
    packages: tuple[tuple[str, str], ...]
    system: str
    release: str
    machine: str
    cpu_model: str
    cpu_count: int
    gpus: tuple[Gpu, ...] = ()
    keel_version: str = "unknown"
    _digest: list[Digest] = field(default_factory=list, init=False, repr=False, compare=False)

    @property
    def package_versions(self) -> dict[str, str]:
        """Installed distributions as `{normalised name: version}`."""
        return dict(self.packages)

    def to_dict(self) -> dict[str, Any]:
        """The lock as a JSON-ready document with its kind and version tags."""
        return {
            "kind": KIND,
            "version": VERSION,
            "python": {
                "version": self.python_version,
                "implementation": self.python_implementation,
            },
            "packages": [f"{name}=={version}" for name, version in self.packages],
            "platform": {"system": self.system, "release": self.release, "machine": self.machine},
            "cpu": {"model": self.cpu_model, "count": self.cpu_count},
            "gpus": [{"name": g.name, "driver_version": g.driver_version} for g in self.gpus],
            "keel_version": self.keel_version,
        }

    def to_json(self) -> bytes:
        """Canonical JSON bytes (sorted keys, no whitespace): the input of `digest`."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()

    @property
    def digest(self) -> Digest:
        """BLAKE3 of `to_json()`, computed once."""
        if not self._digest:
            self._digest.append(hash_bytes(self.to_json()))
        return self._digest[0]

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> EnvironmentLock:
        """Read a lock written by `to_dict` (raises ValueError on another kind or version)."""
        if document.get("kind") != KIND or document.get("version") != VERSION:
            raise ValueError(
                f"not a {KIND} version {VERSION} document: "
                f"kind={document.get('kind')!r} version={document.get('version')!r}"
            )
        packages = []
        for entry in document["packages"]:
            name, sep, version = str(entry).partition("==")
            if not sep:
                raise ValueError(f"package entry must be 'name==version', got {entry!r}")
            packages.append((name, version))
        return cls(
            python_version=document["python"]["version"],
            python_implementation=document["python"]["implementation"],
            packages=tuple(sorted(packages)),
            system=document["platform"]["system"],
            release=document["platform"]["release"],
            machine=document["platform"]["machine"],
            cpu_model=document["cpu"]["model"],
            cpu_count=int(document["cpu"]["count"]),
            gpus=tuple(Gpu(g["name"], g["driver_version"]) for g in document["gpus"]),
            keel_version=document["keel_version"],
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> EnvironmentLock:
        return cls.from_dict(json.loads(data))


def capture_environment() -> EnvironmentLock:
    """Describe the running interpreter and machine.

    The distribution scan, CPU model and GPU query are cached for the life of the process
    (a scan walks every `.dist-info` folder on `sys.path`: tens of milliseconds, and
    nvidia-smi can take a second); a process that installs packages and captures again must
    be restarted to see them.
    """
    uname = platform.uname()
    return EnvironmentLock(
        python_version=platform.python_version(),
        python_implementation=platform.python_implementation(),
        packages=_installed_distributions(),
        system=uname.system,
        release=uname.release,
        machine=uname.machine,
        cpu_model=_cpu_model(),
        cpu_count=os.cpu_count() or 0,
        gpus=_gpus(),
        keel_version=_keel_version(),
    )


def _clear_caches() -> None:
    """Forget the cached scans (tests, or after installing packages in-process)."""
    _installed_distributions.cache_clear()
    _cpu_model.cache_clear()
    _gpus.cache_clear()


@functools.cache
def _installed_distributions() -> tuple[tuple[str, str], ...]:
    found: dict[str, str] = {}
    # importlib.metadata yields distributions in sys.path order; when a name is installed twice
    # the first one is the one `import` sees, so it wins.
    for dist in importlib.metadata.distributions():
        raw_name = dist.metadata["Name"] if dist.metadata else None
        if not raw_name:
            continue  # a broken .dist-info folder without metadata: nothing to record
        found.setdefault(normalise_name(raw_name), dist.version)
    return tuple(sorted(found.items()))


@functools.cache
def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() in ("model name", "Hardware", "cpu model"):
                return value.strip()
    except OSError:
        pass  # not Linux: fall back to what the platform module knows
    return platform.processor() or platform.machine() or "unknown"


@functools.cache
def _gpus() -> tuple[Gpu, ...]:
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return ()
    try:
        completed = subprocess.run(
            [executable, "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=_GPU_QUERY_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ()  # recording GPUs is best effort: never fail a run over it
    if completed.returncode != 0:
        return ()
    gpus = []
    for line in completed.stdout.splitlines():
        name, sep, driver = line.rpartition(",")
        if sep and name.strip():
            gpus.append(Gpu(name.strip(), driver.strip()))
    return tuple(gpus)


def _keel_version() -> str:
    try:
        return importlib.metadata.version("keelml")
    except importlib.metadata.PackageNotFoundError:
        # Running from a source tree that is not installed.
        keel = sys.modules.get("keel")
        return str(getattr(keel, "__version__", "unknown"))


@dataclass(frozen=True, slots=True)
class EnvDifference:
    """One way the current environment differs from a recorded one."""

    kind: Literal["python", "platform", "package"]
    change: Literal["added", "removed", "changed"]
    name: str
    recorded: str | None
    current: str | None

    def __str__(self) -> str:
        if self.change == "added":
            return f"{self.kind} {self.name}: {self.current} installed now, absent when recorded"
        if self.change == "removed":
            return f"{self.kind} {self.name}: {self.recorded} recorded, not installed now"
        return f"{self.kind} {self.name}: {self.recorded} recorded, {self.current} now"


def diff_environments(recorded: EnvironmentLock, current: EnvironmentLock) -> list[EnvDifference]:
    """What changed from `recorded` to `current`: interpreter, platform, then packages by name.

    CPU and GPU models are left out on purpose: they change where a run executes, not what
    software computes, and listing them would flag every reproduction on another machine.
    """
    differences: list[EnvDifference] = []
    scalar_fields: list[tuple[Literal["python", "platform"], str, str, str]] = [
        ("python", "version", recorded.python_version, current.python_version),
        (
            "python",
            "implementation",
            recorded.python_implementation,
            current.python_implementation,
        ),
        ("platform", "system", recorded.system, current.system),
        ("platform", "release", recorded.release, current.release),
        ("platform", "machine", recorded.machine, current.machine),
    ]
    for kind, name, before, after in scalar_fields:
        if before != after:
            differences.append(EnvDifference(kind, "changed", name, before, after))
    before_packages = recorded.package_versions
    after_packages = current.package_versions
    for name in sorted(before_packages.keys() | after_packages.keys()):
        before_version = before_packages.get(name)
        after_version = after_packages.get(name)
        if before_version == after_version:
            continue
        change: Literal["added", "removed", "changed"] = (
            "added" if before_version is None else "removed" if after_version is None else "changed"
        )
        differences.append(EnvDifference("package", change, name, before_version, after_version))
    return differences


def recorded_environment(project: Workspace, run_id: str) -> EnvironmentLock | None:
    """The environment lock run `run_id` recorded (`LOCK_ARTIFACT`), or None if none."""
    stored = {a.name: a for a in project.metadata.runs.artifacts(run_id)}
    if LOCK_ARTIFACT not in stored:
        return None
    return EnvironmentLock.from_json(project.artifacts.read_bytes(stored[LOCK_ARTIFACT].digest))
