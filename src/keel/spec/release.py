"""What a version must pass before an alias moves, and who approves: `release:`."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Final, Literal

from pydantic import Field, field_validator, model_validator

from keel.spec._base import Duration, _Section

__all__ = [
    "DEFAULT_ALIASES",
    "ApprovalPolicy",
    "BeatsChampionGate",
    "ContractPassedGate",
    "Gate",
    "InferenceContractGate",
    "MetricThresholdGate",
    "ReleaseSpec",
]


class _GateBase(_Section):
    #: The aliases this gate guards; None: every promotion (`keel promote ... --to ALIAS`).
    aliases: list[str] | None = None

    def applies_to(self, alias: str) -> bool:
        return self.aliases is None or alias in self.aliases


class MetricThresholdGate(_GateBase):
    """The candidate's metric on the evaluation data must lie within [min, max]."""

    type: Literal["metric_threshold"]
    metric: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _has_bound(self) -> MetricThresholdGate:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class BeatsChampionGate(_GateBase):
    """The candidate must beat the alias holder, both scored on the same evaluation data."""

    type: Literal["beats_champion"]
    metric: str
    #: Positive: must beat the holder by this much; negative: may trail it by at most this much.
    margin: float = 0.0
    #: The margin is a fraction of the holder's value (0.01: one percent better).
    relative: bool = False
    #: Whose holder is the champion; None: the alias being promoted to. A canary move
    #: usually compares with `production`.
    alias: str | None = None


class ContractPassedGate(_GateBase):
    """The training data passed its contract."""

    type: Literal["contract_passed"]


class InferenceContractGate(_GateBase):
    """The model answers sample requests in its stored request/response schema."""

    type: Literal["inference_contract"]
    samples: int = Field(default=100, gt=0)


Gate = Annotated[
    MetricThresholdGate | BeatsChampionGate | ContractPassedGate | InferenceContractGate,
    Field(discriminator="type"),
]
_GATE_TAGS: Final = frozenset(
    {"metric_threshold", "beats_champion", "contract_passed", "inference_contract"}
)


class ApprovalPolicy(_Section):
    required: int = Field(default=1, ge=0)
    roles: list[str] = Field(default_factory=list)
    #: Aliases whose moves need approval; others (e.g. `candidate`) move on gates alone.
    aliases: list[str] = Field(default_factory=lambda: ["production"])


#: The aliases a project may promote to when keel.yaml does not list its own.
DEFAULT_ALIASES: Final = ("candidate", "staging", "canary", "production")
_ALIAS: Final = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


class ReleaseSpec(_Section):
    #: The aliases versions may be promoted to; `candidate` (where training registers new
    #: versions) is always one. A promotion to any other name is refused, so a typo
    #: (`--to prod`) cannot create an alias that no approval policy covers.
    aliases: list[str] = Field(default_factory=lambda: list(DEFAULT_ALIASES))
    gates: list[Gate] = Field(default_factory=list)
    approvals: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    request_ttl: Duration = timedelta(days=7)
    #: Every this many audit events, a signed checkpoint of the log's head is written to the
    #: artifact store (`keel audit-log verify` writes one too): a database writer can drop
    #: at most the events after the newest one unnoticed.
    audit_checkpoint_every: int = Field(default=100, ge=1)
    #: What loading a version without a signature does (one registered before keel signed
    #: packages): `refuse`, or `warn` (load it, logging a warning each time). `warn` trusts
    #: whoever can write the metadata and artifact stores with code that runs in the server.
    unsigned_packages: Literal["refuse", "warn"] = "refuse"

    @field_validator("aliases")
    @classmethod
    def _valid_aliases(cls, value: list[str]) -> list[str]:
        for name in value:
            if not isinstance(name, str) or not _ALIAS.match(name) or name == "latest":
                raise ValueError(
                    f"alias {name!r}: expected lowercase letters, digits, '_' or '-', starting "
                    "with a letter (at most 63), and not 'latest'"
                )
        duplicates = sorted({n for n in value if value.count(n) > 1})
        if duplicates:
            raise ValueError(f"listed more than once: {', '.join(duplicates)}")
        return value

    @property
    def declared_aliases(self) -> tuple[str, ...]:
        """Every alias a version may be promoted to: `candidate`, then those listed."""
        return ("candidate", *(name for name in self.aliases if name != "candidate"))
