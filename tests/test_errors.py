"""One table of error codes: every class of keel's error tree has its row, and the CLI, the
HTTP API, the web UI and `keel serve` all answer an error with that row's exit code, status
and `code`."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
from markupsafe import escape

import keel.errors
from keel.cli.main import main
from keel.errors import (
    ERROR_CODES,
    ConfigError,
    DataError,
    DependencyMissing,
    EngineError,
    KeelError,
    UserCodeError,
    error_code,
)
from keel.project import Project
from keel.server import create_app
from keel.web.server import run_in_thread
from keel.web.session import FormError

SPEC = "version: 1\nname: errors-test\n"


def _tree(root: type[KeelError]) -> list[type[KeelError]]:
    found = [root]
    for child in root.__subclasses__():
        found.extend(_tree(child))
    return found


TREE = [kind for kind in _tree(KeelError) if kind.__module__ == "keel.errors"]


def _error(kind: type[KeelError]) -> KeelError:
    if kind is DependencyMissing:
        return DependencyMissing("skops", "sklearn", "Loading the model")
    if kind is EngineError:
        return EngineError("the Spark job failed: executor lost", engine="spark")
    if kind is UserCodeError:
        return UserCodeError("train:train raised", entry_point="train:train")
    if issubclass(kind, ConfigError):
        return kind("bad value", problems=[("release.gates", "expected a list")])
    if issubclass(kind, DataError):
        return kind("data.csv: no such file", path="data.csv")
    return kind(f"a {kind.__name__} on purpose")


def test_every_class_of_the_tree_has_one_row() -> None:
    assert set(ERROR_CODES) == set(TREE)
    exported = [getattr(keel.errors, name) for name in keel.errors.__all__]
    assert set(TREE) == {kind for kind in exported if isinstance(kind, type) and kind in TREE}
    assert len(TREE) == len(set(TREE))
    for kind in TREE:
        row = error_code(kind)
        assert row is ERROR_CODES[kind]
        assert row.code and 0 < row.exit_code < 70 and 400 <= row.http_status < 600


def test_a_subclass_defined_elsewhere_reports_as_its_nearest_ancestor() -> None:
    assert error_code(FormError("not a form")) is ERROR_CODES[ConfigError]
    with pytest.raises(TypeError):
        error_code(ValueError)  # type: ignore[arg-type]


def test_the_documented_values_hold() -> None:
    """docs/cli.md's exit codes and `code` names, and the HTTP statuses /api/v1 documents."""
    documented = {
        kind.__name__: (row.code, row.exit_code, row.http_status)
        for kind, row in ERROR_CODES.items()
    }
    assert documented == {
        "KeelError": ("error", 1, 500),
        "ConfigError": ("config_error", 2, 400),
        "DataError": ("data_error", 2, 400),
        "NotFound": ("not_found", 3, 404),
        "Conflict": ("conflict", 4, 409),
        "PermissionDenied": ("permission_denied", 5, 403),
        "StoreError": ("store_error", 6, 503),
        "StoreRefused": ("store_error", 6, 503),
        "DependencyMissing": ("dependency_missing", 7, 500),
        "ApprovalRequired": ("approval_required", 8, 409),
        "UserCodeError": ("user_code_error", 9, 500),
        "EngineError": ("engine_error", 10, 502),
        "ContractViolation": ("contract_violation", 1, 422),
        "GateFailed": ("gate_failed", 1, 422),
        "IntegrityError": ("integrity_error", 1, 500),
    }


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    env = {"KEEL_USER": "root"}
    Project.init(tmp_path, env=env).close()
    (tmp_path / "keel.yaml").write_text(SPEC)
    return tmp_path


@pytest.mark.parametrize("kind", TREE, ids=lambda kind: kind.__name__)
def test_the_cli_exits_with_the_tables_code(
    kind: type[KeelError],
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise _error(kind)

    monkeypatch.setattr(Project, "open", refuse)
    code = main(["-C", str(folder), "models", "list", "--json"])
    row = ERROR_CODES[kind]
    assert code == row.exit_code
    assert json.loads(capsys.readouterr().out)["error"]["code"] == row.code


def test_the_cli_exits_with_the_tables_code_for_a_real_error(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["-C", str(folder), "models", "show", "nosuch", "--json"])
    assert code == ERROR_CODES[keel.errors.NotFound].exit_code
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "not_found"


@dataclass
class Answer:
    status: int
    body: str


@pytest.fixture
def server(folder: Path) -> Iterator[str]:
    with Project.open(folder, env={"KEEL_USER": "root"}) as project:
        app, _ = create_app(project, api=True, ui=True)
        with run_in_thread(app) as url:
            yield url


def _call(url: str, data: bytes | None = None) -> Answer:
    headers = {"Authorization": "Bearer keel_x", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return Answer(response.status, response.read().decode())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.read().decode())


@pytest.mark.parametrize("kind", TREE, ids=lambda kind: kind.__name__)
def test_every_http_app_answers_with_the_tables_status(
    kind: type[KeelError], server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/api/v1 and `keel serve`'s /v1/feedback fail in authentication, the UI in checking a
    page's parameters: each raises the error inside the route's own handling."""

    async def refuse_call(*args: Any, **kwargs: Any) -> NoReturn:
        raise _error(kind)

    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise _error(kind)

    monkeypatch.setattr("keel.web.api.authenticate", refuse_call)
    monkeypatch.setattr("keel.serving.auth.authenticate", refuse_call)
    monkeypatch.setattr("keel.web.ui.check_parameters", refuse)
    row = ERROR_CODES[kind]

    api = _call(f"{server}/api/v1/models")
    assert api.status == row.http_status
    assert json.loads(api.body)["error"]["code"] == row.code

    feedback = _call(f"{server}/v1/feedback", b'{"feedback": []}')
    assert feedback.status == row.http_status
    assert json.loads(feedback.body)["error"] == _error(kind).message

    page = _call(f"{server}/ui/")
    assert page.status == row.http_status
    assert str(escape(_error(kind).message)) in page.body


def test_the_ui_answers_a_real_error_with_the_tables_status(server: str) -> None:
    page = _call(f"{server}/ui/models/nosuch")
    assert page.status == ERROR_CODES[keel.errors.NotFound].http_status
