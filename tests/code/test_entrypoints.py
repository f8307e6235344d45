"""Code fingerprints and entry-point loading against small projects in tmp_path."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from keel.code.entrypoints import (
    CodeFile,
    CodeFingerprint,
    entry_point_source,
    fingerprint_files,
    load_entry_point,
)
from keel.domain.digest import Digest
from keel.errors import ConfigError, UserCodeError


def _project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return _project(
        tmp_path / "project",
        {
            "features.py": (
                "import math\nfrom helpers import double\nfrom shapes import area\n\n"
                "def build(x):\n    return double(x) + area(1)\n"
            ),
            "helpers.py": "def double(x):\n    return x * 2\n",
            "shapes/__init__.py": "from .circle import area\n",
            "shapes/circle.py": "def area(r):\n    return 3 * r * r\n",
            "unrelated.py": "VALUE = 1\n",
            "train.py": "def train(x):\n    return x\n",
        },
    )


def test_fingerprint_lists_project_files_the_entry_point_loads(project: Path) -> None:
    fingerprint = entry_point_source("features:build", project)
    paths = [file.path for file in fingerprint.files]
    assert paths == ["features.py", "helpers.py", "shapes/__init__.py", "shapes/circle.py"]
    assert fingerprint.entry_point == "features:build"


def test_changing_an_imported_helper_changes_the_fingerprint(project: Path) -> None:
    before = entry_point_source("features:build", project).digest
    (project / "unrelated.py").write_text("VALUE = 2\n", encoding="utf-8")
    assert entry_point_source("features:build", project).digest == before
    (project / "helpers.py").write_text("def double(x):\n    return x + x\n", encoding="utf-8")
    assert entry_point_source("features:build", project).digest != before


def test_load_runs_the_code_and_leaves_sys_path_and_plain_names_alone(project: Path) -> None:
    path_before = list(sys.path)
    build = load_entry_point("features:build", project)
    assert build(2) == 7
    assert sys.path == path_before
    assert "helpers" not in sys.modules
    assert "features" not in sys.modules
    assert not (project / "__pycache__").exists()


def test_unchanged_code_is_not_imported_twice(project: Path) -> None:
    assert load_entry_point("features:build", project) is load_entry_point(
        "features:build", project
    )


def test_edited_code_is_imported_afresh(project: Path) -> None:
    assert load_entry_point("features:build", project)(2) == 7
    (project / "helpers.py").write_text("def double(x):\n    return x * 20\n", encoding="utf-8")
    assert load_entry_point("features:build", project)(2) == 43


def test_two_projects_with_the_same_module_names_stay_apart(tmp_path: Path) -> None:
    one = _project(tmp_path / "one", {"features.py": "def build():\n    return 1\n"})
    two = _project(tmp_path / "two", {"features.py": "def build():\n    return 2\n"})
    assert load_entry_point("features:build", one)() == 1
    assert load_entry_point("features:build", two)() == 2


@pytest.mark.parametrize(
    ("files", "spec", "expected"),
    [
        ({}, "missing:build", "no module 'missing'"),
        ({"features.py": "X = 1\n"}, "features:build", "features.py defines no 'build'"),
        ({"features.py": "build = 3\n"}, "features:build", "is a int, not a function"),
        (
            {"features.py": "import helpers\n\ndef build():\n    pass\n", "helpers.py": "1 / 0\n"},
            "features:build",
            "helpers.py, line 1: ZeroDivisionError",
        ),
        (
            {"features.py": "\nimport not_installed_anywhere\n\ndef build():\n    pass\n"},
            "features:build",
            "features.py, line 2: ModuleNotFoundError",
        ),
        (
            {"features.py": "def build(:\n    pass\n"},
            "features:build",
            "syntax error in features.py, line 1",
        ),
        ({}, "no_colon", "must be 'module:function'"),
    ],
)
def test_bad_entry_points_give_clear_errors(
    tmp_path: Path, files: dict[str, str], spec: str, expected: str
) -> None:
    root = _project(tmp_path / "bad", files)
    path_before = list(sys.path)
    # The project's own failures (syntax, an exception while importing) are UserCodeErrors;
    # a wrong entry point in keel.yaml is a ConfigError.
    with pytest.raises((ConfigError, UserCodeError)) as raised:
        load_entry_point(spec, root)
    assert expected in str(raised.value)
    assert sys.path == path_before
    assert "features" not in sys.modules


def test_only_files_restricts_what_may_be_imported(project: Path) -> None:
    with pytest.raises(UserCodeError, match="ModuleNotFoundError"):
        load_entry_point("features:build", project, only_files={"features.py"})


def _fingerprint() -> CodeFingerprint:
    return fingerprint_files(
        "features:build",
        [
            CodeFile("helpers.py", Digest.of_hex("1" * 64)),
            CodeFile("features.py", Digest.of_hex("2" * 64)),
        ],
    )


def test_the_fingerprint_document_is_the_one_packages_and_runs_have_stored() -> None:
    # Model packages and run lineage store this document: its bytes must not change.
    assert json.dumps(_fingerprint().to_dict()) == (
        '{"entry_point": "features:build", "files": ['
        '{"path": "features.py", "digest": "blake3:' + "2" * 64 + '"}, '
        '{"path": "helpers.py", "digest": "blake3:' + "1" * 64 + '"}], '
        '"digest": "blake3:73b3129cb30208343883231b0a3e3d8fa074dba07b08d873196a3cefd009479e"}'
    )
    assert CodeFingerprint.from_dict(json.loads(json.dumps(_fingerprint().to_dict()))) == (
        _fingerprint()
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"files": [{"path": "features.py"}]}, "code.files[0].digest: Field required"),
        ({"digest": "md5:00"}, "code.digest: Value error"),
        ({"entry_point": None}, "code.entry_point: Input should be a valid string"),
    ],
)
def test_a_malformed_fingerprint_document_names_the_field(
    change: dict[str, object], message: str
) -> None:
    document = _fingerprint().to_dict() | change
    with pytest.raises(ValueError) as raised:
        CodeFingerprint.from_dict(document)
    assert message in str(raised.value)
