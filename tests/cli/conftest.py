"""Run `keel` in-process, as a user would type it, and read what it printed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from keel.cli.main import main


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Keel:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys

    def __call__(self, *args: str | Path) -> Result:
        self._capsys.readouterr()
        code = main([str(arg) for arg in args])
        captured = self._capsys.readouterr()
        return Result(code, captured.out, captured.err)


@pytest.fixture
def keel(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Keel:
    """`keel ...` in a clean environment whose cwd is an empty temp folder."""
    for name in ("KEEL_PROJECT", "KEEL_DB_URL", "KEEL_ARTIFACTS", "KEEL_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KEEL_USER", "ana")
    monkeypatch.chdir(tmp_path)
    return Keel(capsys)
