"""Model references and the registry's value objects: pure, no store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from keel.domain.digest import Digest
from keel.domain.model import Alias, ModelRef, ModelVersion, parse_model_ref
from keel.domain.run import new_run_id
from keel.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("flights", ModelRef("flights", "model")),
        (" flights ", ModelRef("flights", "model")),
        ("flights@3", ModelRef("flights", "version", version=3)),
        ("flights@candidate", ModelRef("flights", "alias", alias="candidate")),
        ("flights@latest", ModelRef("flights", "latest")),
        ("a.b_c-1@prod-eu_2", ModelRef("a.b_c-1", "alias", alias="prod-eu_2")),
    ],
)
def test_parse_model_ref_reads_every_form(text: str, expected: ModelRef) -> None:
    parsed = parse_model_ref(text)
    assert parsed == expected
    assert str(parsed) == text.strip()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected MODEL"),
        ("Flights", "model name 'Flights'"),
        ("-flights", "model name"),
        ("@3", "model name ''"),
        ("flights@", "after '@'"),
        ("flights@0", "versions start at 1"),
        ("flights@-1", "after '@'"),
        ("flights@Prod", "after '@'"),
        ("flights@1@2", "after '@'"),
        ("flights@2x", "after '@'"),
        ("f" * 64, "model name"),
    ],
)
def test_parse_model_ref_refuses_malformed_refs(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_model_ref(text)
    assert caught.value.problems


def test_value_objects_validate_and_serialise() -> None:
    now = datetime.now(UTC)
    run_id = new_run_id()
    digest = Digest.of_hex("a" * 64)
    version = ModelVersion(
        "flights", 2, run_id, digest, "sklearn", {"inputs": []}, {"auc": 0.8}, now, "ana"
    )
    assert version.ref == "flights@2" and version.holder == "model:flights/2"
    assert version.to_dict()["package"] == str(digest)
    assert hash(version) == hash(version)
    with pytest.raises(ConfigError):
        ModelVersion("flights", 0, run_id, digest, "sklearn", {}, {}, now, "ana")
    with pytest.raises(ValueError, match="timezone"):
        ModelVersion(
            "flights", 1, run_id, digest, "sklearn", {}, {}, now.replace(tzinfo=None), "ana"
        )
    assert Alias("flights", "production", 2, now, "bo").to_dict()["alias"] == "production"
    with pytest.raises(ConfigError, match="alias name"):
        Alias("flights", "latest", 2, now, "bo")
