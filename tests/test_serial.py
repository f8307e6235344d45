"""keel.serial: the one way dataclasses become documents and are read back."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

from keel.domain.digest import Digest
from keel.serial import dump, load

DIGEST = Digest.of_hex("ab" * 32)


class Colour(Enum):
    RED = "red"


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    digest: Digest


@dataclass(frozen=True, slots=True)
class Document:
    at: datetime
    day: date | None
    score: float
    colour: Colour
    folder: Path
    tags: tuple[str, ...]
    parts: tuple[Part, ...]
    extra: dict[str, Any] = field(default_factory=dict)
    note: str | None = None


def _document() -> Document:
    return Document(
        at=datetime(2013, 7, 1, 12, 30, tzinfo=UTC),
        day=date(2013, 7, 1),
        score=3,  # type: ignore[arg-type] # an int in a float field, as metrics often are
        colour=Colour.RED,
        folder=Path("models/flights"),
        tags=("a", "b"),
        parts=(Part("x.py", DIGEST),),
        extra={"nan": math.nan, "nested": [1, 2]},
    )


def test_dump_writes_the_documents_keel_has_always_written() -> None:
    document = dump(_document())
    assert list(document) == [
        "at",
        "day",
        "score",
        "colour",
        "folder",
        "tags",
        "parts",
        "extra",
        "note",
    ]
    # isoformat's +00:00 (pydantic alone writes Z), an int stays an int, NaN stays NaN.
    assert json.dumps(document) == (
        '{"at": "2013-07-01T12:30:00+00:00", "day": "2013-07-01", "score": 3, '
        '"colour": "red", "folder": "models/flights", "tags": ["a", "b"], '
        f'"parts": [{{"name": "x.py", "digest": "{DIGEST}"}}], '
        '"extra": {"nan": NaN, "nested": [1, 2]}, "note": null}'
    )


def test_dump_can_leave_out_unset_fields() -> None:
    assert "note" not in dump(_document(), exclude_none=True)


def test_load_reads_back_what_dump_wrote() -> None:
    original = _document()
    restored = load(Document, json.loads(json.dumps(dump(original))))
    assert restored.at == original.at
    assert restored.at.tzinfo is UTC  # read as keel reads times, not with pydantic's tzinfo
    assert restored.parts == original.parts
    assert isinstance(restored.parts[0].digest, Digest)
    assert restored.tags == ("a", "b")
    assert restored.colour is Colour.RED
    assert restored.folder == Path("models/flights")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"at": "yesterday"}, "stored.at: Value error, Invalid isoformat string"),
        ({"at": 1372681800}, "stored.at: Value error, expected datetime as text, got int"),
        ({"score": "high"}, "stored.score: Input should be a valid number"),
        ({"colour": "blue"}, "stored.colour: Input should be 'red'"),
        (
            {"parts": [{"name": "x.py", "digest": "md5:00"}]},
            "stored.parts[0].digest: Value error",
        ),
        ({"parts": [{"name": "x.py"}]}, "stored.parts[0].digest: Field required"),
    ],
)
def test_a_malformed_document_names_the_field_and_the_rule(
    change: dict[str, Any], message: str
) -> None:
    document = dump(_document()) | change
    with pytest.raises(ValueError) as raised:
        load(Document, document, where="stored")
    assert message in str(raised.value)


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ValueError) as raised:
        load(Document, {"at": "2013-07-01T00:00:00+00:00"}, where="stored")
    for name in ("day", "score", "colour", "folder", "tags", "parts"):
        assert f"stored.{name}: Field required" in str(raised.value)


@dataclass(frozen=True, slots=True)
class Counts:
    rows: int
    mean: float


def test_values_of_another_type_are_written_as_they_are() -> None:
    # numpy's scalars reach documents from statistics: a dict literal kept them, so does dump.
    np = pytest.importorskip("numpy")
    document = dump(Counts(np.int64(3), np.float64(0.5)))
    assert document == {"rows": 3, "mean": 0.5}
    assert isinstance(document["rows"], np.int64)


def test_derived_values_follow_the_field_they_are_computed_from() -> None:
    document = dump(Counts(10, 0.5), after={"rows": {"half": 5}})
    assert list(document.items()) == [("rows", 10), ("half", 5), ("mean", 0.5)]
    with pytest.raises(ValueError, match="Counts has no field total"):
        dump(Counts(10, 0.5), after={"total": {"half": 5}})


@dataclass(frozen=True, slots=True)
class Cached:
    values: tuple[str, ...] | None
    as_set: frozenset[str] | None = field(init=False, default=None, compare=False)

    def __post_init__(self) -> None:
        if self.values is not None:
            object.__setattr__(self, "as_set", frozenset(self.values))


def test_a_field_init_does_not_take_is_not_written_and_is_rebuilt_on_load() -> None:
    assert dump(Cached(("a", "b"))) == {"values": ["a", "b"]}
    assert load(Cached, {"values": ["a", "b"]}).as_set == {"a", "b"}
    assert load(Cached, {"values": None}).as_set is None  # its default, as __init__ sets it


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"rows": "5", "mean": 0.5}, "doc.rows: Input should be a valid integer"),
        ({"rows": 5.5, "mean": 0.5}, "doc.rows: Input should be a valid integer"),
        ({"rows": 5, "mean": "0.5"}, "doc.mean: Input should be a valid number"),
    ],
)
def test_values_are_checked_not_converted(document: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        load(Counts, document, where="doc")
    assert message in str(raised.value)
    assert load(Counts, {"rows": 5, "mean": 1}) == Counts(5, 1.0)  # an integer is a number


@dataclass(frozen=True, slots=True)
class Bound:
    limit: int | float | None = None


def test_a_union_is_one_error_naming_its_members() -> None:
    with pytest.raises(ValueError, match=r"^doc.limit: Input should be an integer or a number$"):
        load(Bound, {"limit": "low"}, where="doc")
