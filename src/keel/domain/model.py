"""Registered models: numbered versions of a run's model package, and aliases on them.

A `ModelVersion` is immutable once registered: which run produced it, the content digest
of its package (estimator plus feature code), its flavor, its inference contract and the
metrics it was evaluated with. An `Alias` is a movable name (`candidate`, `production`,
...) on one version of a model. `parse_model_ref` reads what a user types to name a
version: `name@3`, `name@candidate`, `name@latest` or a bare `name`.
Pure: no storage, no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from keel.domain.digest import Digest
from keel.domain.run import check_key, is_run_id, metric_value
from keel.errors import ConfigError

__all__ = [
    "ALIAS_NAME_LENGTH",
    "CANDIDATE",
    "LATEST",
    "MAX_VERSION",
    "MODEL_NAME_LENGTH",
    "MODEL_NAME_PATTERN",
    "MODEL_NAME_RULE",
    "VERSION_RULE",
    "Alias",
    "ModelRef",
    "ModelVersion",
    "RegisteredModel",
    "check_alias_name",
    "check_model_name",
    "contract_json",
    "holder_of",
    "is_model_name",
    "metrics_json",
    "parse_model_ref",
    "parse_version_number",
]

#: The alias a new registration gets unless told otherwise.
CANDIDATE: Final = "candidate"
#: The reference that names a model's newest version; reserved, never an alias.
LATEST: Final = "latest"
#: Longest model name (the rule is the project-name rule of keel.yaml).
MODEL_NAME_LENGTH: Final = 63
#: Longest alias name.
ALIAS_NAME_LENGTH: Final = 63

#: The model-name rule as a regular expression (JSON Schema `pattern`s use it too).
MODEL_NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9._-]{0,62}$"

_MODEL_NAME = re.compile(MODEL_NAME_PATTERN)
_ALIAS_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_VERSION = re.compile(r"^[0-9]+$")
#: The largest version number: versions are 64-bit integers in every store.
MAX_VERSION: Final = 2**63 - 1
#: A version number as typed in a URL: ASCII digits only. `str.isdigit` (and `\d`) would also
#: take '²' or '٣', which int() then refuses or reads as another number.
_VERSION_TEXT = re.compile(r"[0-9]{1,19}")
#: What a version number in a path or query must be, as error messages state it.
VERSION_RULE: Final = f"a whole number from 1 to {MAX_VERSION} in ASCII digits"

_MODEL_RULE: Final = (
    "lowercase letters, digits, '.', '_' or '-' (at most 63, starting with a letter or digit)"
)
#: The model-name rule, as error messages state it.
MODEL_NAME_RULE: Final = _MODEL_RULE
_ALIAS_RULE: Final = (
    "lowercase letters, digits, '_' or '-' (at most 63, starting with a letter), not 'latest'"
)
_REF_FORMS: Final = "MODEL, MODEL@VERSION (a positive number), MODEL@ALIAS or MODEL@latest"


def check_model_name(name: object) -> str:
    """`name` if it is a valid model name, else `ConfigError` naming the rule."""
    if not isinstance(name, str) or _MODEL_NAME.match(name) is None:
        raise ConfigError(
            f"model name {name!r} is invalid: expected {_MODEL_RULE}",
            problems=[("model", f"must be {_MODEL_RULE}")],
        )
    return name


def check_alias_name(name: object) -> str:
    """`name` if it is a valid alias name, else `ConfigError` naming the rule."""
    if not isinstance(name, str) or _ALIAS_NAME.match(name) is None or name == LATEST:
        raise ConfigError(
            f"alias name {name!r} is invalid: expected {_ALIAS_RULE}",
            problems=[("alias", f"must be {_ALIAS_RULE}")],
        )
    return name


def parse_version_number(text: str) -> int | None:
    """The version number `text` spells (`VERSION_RULE`), or None for anything else."""
    if _VERSION_TEXT.fullmatch(text) is None:
        return None
    number = int(text)
    return number if 1 <= number <= MAX_VERSION else None


def is_model_name(name: str) -> bool:
    """Whether `name` follows the model-name rule (that of keel.yaml's `name`)."""
    return _MODEL_NAME.fullmatch(name) is not None


def _check_version(version: object) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(
            f"model version must be a positive whole number, got {version!r}",
            problems=[("version", "must be a positive whole number")],
        )
    return version


def contract_json(contract: Mapping[str, Any]) -> str:
    """The inference contract as canonical JSON text; `ConfigError` if it is not JSON data."""
    if not isinstance(contract, Mapping):
        raise ConfigError(
            f"inference contract must be a mapping, got {type(contract).__name__}",
            problems=[("inference_contract", "must be a JSON object")],
        )
    try:
        return json.dumps(dict(contract), sort_keys=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"inference contract is not JSON data: {exc}",
            problems=[("inference_contract", "must hold only JSON values (no NaN)")],
        ) from None


def metrics_json(metrics: Mapping[str, float]) -> str:
    """Metrics as canonical JSON text (keys sorted); every value must be a finite number."""
    return json.dumps(
        {check_key("metric", k): metric_value(k, v) for k, v in sorted(metrics.items())},
        allow_nan=False,
        separators=(",", ":"),
    )


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered version of a model: immutable once registered.

    `package` is the digest of the stored model package; `inference_contract` is the
    document the package's contract serialises to (`InferenceContract.to_dict()`), kept
    as plain JSON data here so the registry does not depend on model formats. The two
    dicts take part in equality but not in the hash.
    """

    model: str
    version: int
    run_id: str
    package: Digest
    flavor: str
    inference_contract: dict[str, Any] = field(hash=False)
    metrics: dict[str, float] = field(hash=False)
    created_at: datetime
    created_by: str
    #: The signature of the project's key over the version's name, number, package and flavor
    #: (`keel.models.signing`), as stored: `{"algorithm", "key_id", "signature"}`. None for
    #: versions registered before keel signed packages.
    signature: dict[str, str] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        check_model_name(self.model)
        _check_version(self.version)
        if not is_run_id(self.run_id):
            raise ValueError(f"run id must be 32 lowercase hex characters, got {self.run_id!r}")
        if not self.flavor or not self.flavor.strip():
            raise ValueError("flavor must be a non-empty name, e.g. 'sklearn'")
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")

    @property
    def ref(self) -> str:
        """`model@version`, the reference that always names exactly this version."""
        return f"{self.model}@{self.version}"

    @property
    def holder(self) -> str:
        """The artifact holder that keeps this version's package from garbage collection."""
        return holder_of(self.model, self.version)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready document (times ISO-8601 in UTC)."""
        return {
            "model": self.model,
            "version": self.version,
            "ref": self.ref,
            "run_id": self.run_id,
            "package": str(self.package),
            "flavor": self.flavor,
            "metrics": dict(self.metrics),
            "inference_contract": self.inference_contract,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "signature": None if self.signature is None else dict(self.signature),
        }


def holder_of(model: str, version: int) -> str:
    """The artifact holder name of a model version's package: `model:<name>/<version>`."""
    return f"model:{model}/{version}"


@dataclass(frozen=True, slots=True)
class Alias:
    """A movable name on one version of a model, and who last set it when."""

    model: str
    name: str
    version: int
    set_at: datetime
    set_by: str

    def __post_init__(self) -> None:
        check_model_name(self.model)
        check_alias_name(self.name)
        _check_version(self.version)
        if self.set_at.tzinfo is None:
            raise ValueError("set_at must be timezone-aware")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready document."""
        return {
            "model": self.model,
            "alias": self.name,
            "version": self.version,
            "set_at": self.set_at.isoformat(),
            "set_by": self.set_by,
        }


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A model in brief: its newest version, how many it has, and its aliases by name."""

    name: str
    created_at: datetime
    created_by: str
    latest_version: int
    version_count: int
    aliases: tuple[Alias, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready document; aliases as `{name: version}`."""
        return {
            "name": self.name,
            "latest_version": self.latest_version,
            "versions": self.version_count,
            "aliases": {alias.name: alias.version for alias in self.aliases},
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


RefKind = Literal["model", "version", "alias", "latest"]


@dataclass(frozen=True, slots=True)
class ModelRef:
    """What a user named: a whole model, or one version by number, alias or `latest`.

    `kind` is `model` for a bare name (which `resolve` reads as its newest version),
    `version` (then `version` is set), `alias` (then `alias` is set) or `latest`.
    """

    model: str
    kind: RefKind
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.kind == "version":
            return f"{self.model}@{self.version}"
        if self.kind == "alias":
            return f"{self.model}@{self.alias}"
        if self.kind == "latest":
            return f"{self.model}@{LATEST}"
        return self.model


def parse_model_ref(text: str) -> ModelRef:
    """Read `name`, `name@3`, `name@candidate` or `name@latest`; `ConfigError` otherwise.

    Model names follow the project-name rule; versions are positive numbers; aliases are
    lowercase `[a-z][a-z0-9_-]*`. The error names the part that is wrong and the rule.
    """
    raw = text.strip() if isinstance(text, str) else text
    if not isinstance(raw, str) or not raw:
        raise ConfigError(
            f"{text!r} is not a model reference: expected {_REF_FORMS}",
            problems=[("model reference", f"expected {_REF_FORMS}")],
        )
    name, sep, ref = raw.partition("@")
    if _MODEL_NAME.match(name) is None:
        raise ConfigError(
            f"{text!r} is not a model reference: model name {name!r} must be {_MODEL_RULE}",
            problems=[("model", f"must be {_MODEL_RULE}")],
        )
    if not sep:
        return ModelRef(name, "model")
    if ref == LATEST:
        return ModelRef(name, "latest")
    if _VERSION.match(ref):
        version = int(ref)
        if version < 1:
            raise ConfigError(
                f"{text!r} is not a model reference: versions start at 1",
                problems=[("version", "must be a positive whole number")],
            )
        return ModelRef(name, "version", version=version)
    if _ALIAS_NAME.match(ref) is None:
        raise ConfigError(
            f"{text!r} is not a model reference: after '@' comes a version number, "
            "'latest', or an alias (lowercase letters, digits, '_' or '-', starting with "
            "a letter)",
            problems=[("model reference", f"expected {_REF_FORMS}")],
        )
    return ModelRef(name, "alias", alias=ref)
