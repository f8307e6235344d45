"""Fixtures for dataset snapshots: projects, real flights data and samples of it, the CLI."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
import yaml

from keel.data import read_table
from keel.project import Project

DATA = Path(__file__).resolve().parents[2] / "examples" / "flights" / "data"
FLIGHTS = DATA / "nycflights13_flights.csv.gz"
WEATHER = DATA / "nycflights13_weather.csv.gz"
#: An mtime well in the past: entries for such files are never "racy" in the stat cache.
OLD_MTIME_NS = 1_700_000_000 * 1_000_000_000


@pytest.fixture(scope="session")
def flights_table() -> pa.Table:
    """The whole flights table, read once per session (read-only)."""
    return read_table(FLIGHTS)


def write_sample(table: pa.Table, path: Path, *, mtime_ns: int = OLD_MTIME_NS) -> Path:
    """Write rows of real data as CSV, dated in the past unless told otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pcsv.write_csv(table, str(path))
    set_mtime(path, mtime_ns)
    return path


def set_mtime(path: Path, mtime_ns: int) -> None:
    os.utime(path, ns=(mtime_ns, mtime_ns))


def copy_real(source: Path, dest: Path) -> Path:
    """Copy a data file keeping its (old) modification time."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, dest)
    return dest


def make_project(folder: Path, data: dict[str, Any] | None = None) -> Project:
    """A fresh project in `folder`, with a `data:` section when given, acting as `ana`."""
    Project.init(folder, env={"KEEL_USER": "ana"}).close()
    if data is not None:
        spec = folder / "keel.yaml"
        spec.write_text(
            spec.read_text(encoding="utf-8") + "\n" + yaml.safe_dump({"data": data}),
            encoding="utf-8",
        )
    return Project.open(folder, env={"KEEL_USER": "ana"})


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """A fresh project without a data section."""
    opened = make_project(tmp_path / "project")
    try:
        yield opened
    finally:
        opened.close()
