"""The pure parts: version values, references, ids, diffs, and the dependency rule."""

from __future__ import annotations

import ast
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import keel
from keel.data.diff import diff_versions
from keel.data.snapshot import dataset_id
from keel.domain.dataset import DatasetVersion, SourceFile, TimeRange, parse_dataset_ref
from keel.domain.digest import Digest
from keel.stats import profile_table
from tests.metadata.helpers import digest_of

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _version(**changes: object) -> DatasetVersion:
    base = DatasetVersion(
        id=digest_of("v"),
        source="/data/flights.csv",
        format="csv",
        rows=3,
        columns=(("x", "int64"), ("s", "string")),
        time_range=None,
        parquet=digest_of("p"),
        profile=digest_of("q"),
        created_at=NOW,
        created_by="ana",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("latest", "latest", ""),
        (" Latest ", "latest", ""),
        ("a" * 64, "id", "a" * 64),
        ("blake3:" + "B" * 64, "id", "b" * 64),
        ("abcdef", "prefix", "abcdef"),
        ("blake3:0123456789ab", "prefix", "0123456789ab"),
    ],
)
def test_refs_are_parsed(text: str, kind: str, value: str) -> None:
    ref = parse_dataset_ref(text)
    assert (ref.kind, ref.value) == (kind, value)


@pytest.mark.parametrize("text", ["", "abc12", "abcdeg", "sha256:abcdef", "a" * 65, "la test"])
def test_refs_that_name_nothing_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"dataset|digest|hex"):
        parse_dataset_ref(text)


def test_versions_validate_and_order_their_files() -> None:
    files = (SourceFile("b.csv", 2, digest_of("b")), SourceFile("a.csv", 1, digest_of("a")))
    version = _version(files=files)
    assert [f.path for f in version.files] == ["a.csv", "b.csv"]
    assert version == _version(files=tuple(reversed(files)))
    assert version.holder == f"dataset:{version.id.hex}"
    assert version.short == version.id.hex[:12]
    with pytest.raises(ValueError, match="rows"):
        _version(rows=-1)
    with pytest.raises(ValueError, match="timezone"):
        _version(created_at=datetime(2025, 1, 1))  # naive, on purpose
    with pytest.raises(ValueError, match="unique"):
        _version(columns=(("x", "int64"), ("x", "double")))
    with pytest.raises(ValueError, match="unique"):
        _version(files=(files[0], files[0]))
    with pytest.raises(ValueError, match="relative"):
        SourceFile("/abs/a.csv", 1, digest_of("a"))
    with pytest.raises(ValueError, match="starts after"):
        TimeRange("t", NOW, NOW - timedelta(seconds=1))


names = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12)


@given(st.dictionaries(names, st.binary(max_size=8), min_size=1, max_size=5))
def test_the_id_depends_on_content_not_on_order(files: dict[str, bytes]) -> None:
    pairs = [(name, Digest.of_hex(digest_of(data.hex()).hex)) for name, data in files.items()]
    forward = dataset_id(format="auto", timestamp=None, files=pairs)
    assert forward == dataset_id(format="auto", timestamp=None, files=list(reversed(pairs)))
    assert forward != dataset_id(format="csv", timestamp=None, files=pairs)
    assert forward != dataset_id(format="auto", timestamp="t", files=pairs)
    renamed = [(name + "~", digest) for name, digest in pairs]
    assert forward != dataset_id(format="auto", timestamp=None, files=renamed)


def test_diff_of_two_versions() -> None:
    old_table = pa.table({"x": [1, 2, None], "s": ["a", "b", "b"], "gone": [1, 1, 1]})
    new_table = pa.table({"x": [1.5, 2.5, 3.5, 4.5], "s": ["a", "b", "c", "d"], "new": [True] * 4})
    old = _version(columns=(("x", "int64"), ("s", "string"), ("gone", "int64")))
    new = _version(
        id=digest_of("w"),
        rows=4,
        columns=(("x", "double"), ("s", "string"), ("new", "bool")),
        time_range=TimeRange("t", NOW, NOW),
    )
    diff = diff_versions(old, new, profile_table(old_table), profile_table(new_table))
    assert not diff.identical
    assert diff.rows_delta == 1
    assert diff.added == (("new", "bool"),)
    assert diff.removed == (("gone", "int64"),)
    assert [(c.name, c.old, c.new) for c in diff.retyped] == [("x", "int64", "double")]
    changes = {c.name: c for c in diff.columns}
    assert changes["x"].null_rate == (1 / 3, 0.0)
    assert changes["x"].mean == (1.5, 3.0)
    assert changes["s"].distinct == (2, 4)
    document = diff.to_dict()
    assert document["time_range"]["old"] is None
    assert document["time_range"]["new"]["column"] == "t"
    same = diff_versions(old, old, profile_table(old_table), profile_table(old_table))
    assert same.identical and not same.columns and not same.schema_changed


PURE = ("stats", "domain/dataset.py", "data/diff.py")
ADAPTERS = (
    "keel.metadata",
    "keel.artifacts",
    "keel.cli",
    "keel.project",
    "keel.workspace",
    "sqlalchemy",
    "click",
)


@pytest.mark.parametrize("where", PURE)
def test_pure_modules_import_no_adapter(where: str) -> None:
    root = Path(keel.__file__).parent / where
    paths = sorted(root.rglob("*.py")) if root.is_dir() else [root]
    offenders = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{path.name}: {m}" for m in modules if m.startswith(ADAPTERS)]
    assert not offenders
