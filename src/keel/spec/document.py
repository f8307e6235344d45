"""The whole of keel.yaml (`ProjectSpec`): its sections, and the rules that span them."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from keel.domain.metric import KNOWN_METRICS, direction_of, direction_words, worse_side
from keel.spec._base import SPEC_VERSION, _Section
from keel.spec.engine import EngineSpec
from keel.spec.monitoring import MonitoringSpec
from keel.spec.release import ReleaseSpec
from keel.spec.retraining import RetrainingSpec
from keel.spec.serving import ServingSpec
from keel.spec.sources import DataSpec, StorageSpec
from keel.spec.training import FeaturesSpec, MetricSpec, TrainingSpec

__all__ = ["Owners", "ProjectSpec"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class Owners(_Section):
    """The person or team answerable for each stage; alerts, approval requests and failed
    gates name them (and audit events carry the name to webhooks)."""

    #: What each stage answers for, in the words `keel owners` shows.
    SCOPES: ClassVar[dict[str, str]] = {
        "data": "data contract and dataset snapshots",
        "training": "training runs and the models they produce",
        "release": "release gates, approval requests and alias moves",
        "monitoring": "monitoring windows and the alerts they raise",
    }

    data: str | None = None
    training: str | None = None
    release: str | None = None
    monitoring: str | None = None

    def of(self, stage: str) -> str | None:
        """The owner of `stage` (one of `SCOPES`), or None when keel.yaml names nobody."""
        if stage not in self.SCOPES:
            raise ValueError(f"unknown stage {stage!r}: expected one of {', '.join(self.SCOPES)}")
        owner: str | None = getattr(self, stage)
        return owner or None

    def missing(self) -> list[str]:
        return [stage for stage in self.SCOPES if not self.of(stage)]


class ProjectSpec(_Section):
    """The whole of keel.yaml."""

    version: int = SPEC_VERSION
    name: str
    description: str = ""
    owners: Owners = Field(default_factory=Owners)
    storage: StorageSpec = Field(default_factory=StorageSpec)
    data: DataSpec | None = None
    features: FeaturesSpec | None = None
    training: TrainingSpec | None = None
    metrics: list[MetricSpec] = Field(default_factory=list)
    release: ReleaseSpec = Field(default_factory=ReleaseSpec)
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)
    retraining: RetrainingSpec = Field(default_factory=RetrainingSpec)
    serving: ServingSpec = Field(default_factory=ServingSpec)
    engine: EngineSpec = Field(default_factory=EngineSpec)

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != SPEC_VERSION:
            raise ValueError(
                f"this keel reads keel.yaml version {SPEC_VERSION}, got {value}"
                + ("; upgrade keelml" if value > SPEC_VERSION else "")
            )
        return value

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "expected lowercase letters, digits, '.', '_' or '-' (at most 63, "
                f"starting with a letter or digit), got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _metrics_consistent(self) -> ProjectSpec:
        names = [m.name for m in self.metrics]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"metrics: listed more than once: {', '.join(duplicates)}")
        if not self.metrics:
            return self
        for index, gate in enumerate(self.release.gates):
            metric = getattr(gate, "metric", None)
            if metric is not None and metric not in names:
                raise ValueError(
                    f"release.gates[{index}].metric: {metric!r} is not in metrics "
                    f"({', '.join(names)})"
                )
        return self

    @model_validator(mode="after")
    def _directions_consistent(self) -> ProjectSpec:
        """A threshold on the wrong side of a metric would fire on improvement and never
        on decline: refuse it, naming the key and the side that fits."""
        trigger = self.retraining.triggers.performance
        if trigger is not None:
            higher = direction_of(trigger.metric, self.metrics)
            if higher is None:
                raise ValueError(
                    f"retraining.triggers.performance.metric: unknown metric {trigger.metric!r}: "
                    f"use one of {', '.join(sorted(KNOWN_METRICS))}, or list it in metrics "
                    "with greater_is_better"
                )
            _check_side(
                f"retraining.triggers.performance.{trigger.side}",
                trigger.metric,
                higher,
                trigger.side,
                "a trigger",
            )
        for index, rule in enumerate(self.monitoring.alerts or []):
            if rule.signal != "performance" or rule.subject is None:
                continue
            if rule.threshold is None or "direction" not in rule.model_fields_set:
                continue  # the metric's own worse side applies (keel.monitoring.alerts)
            higher = direction_of(rule.subject, self.metrics)
            if higher is not None:
                _check_side(
                    f"monitoring.alerts[{index}].direction",
                    rule.subject,
                    higher,
                    rule.direction,
                    "a rule",
                )
        return self

    @model_validator(mode="after")
    def _aliases_declared(self) -> ProjectSpec:
        """Every alias keel.yaml names elsewhere is one it declares, so a typo in a gate or a
        policy cannot silently guard (or serve) nothing."""
        declared = self.release.declared_aliases
        named: list[tuple[str, str]] = []
        for index, gate in enumerate(self.release.gates):
            named.extend((f"release.gates[{index}].aliases", a) for a in gate.aliases or [])
            champion = getattr(gate, "alias", None)
            if champion is not None:
                named.append((f"release.gates[{index}].alias", champion))
        named.extend(("release.approvals.aliases", a) for a in self.release.approvals.aliases)
        named.extend(("serving.shadow", a) for a in self.serving.shadow)
        retraining = self.retraining
        if retraining.promotion == "canary" or any(
            value is not None for value in retraining.triggers.model_dump().values()
        ):
            # A canary is promoted on to production when it holds up.
            targets = ["canary", "production"] if retraining.promotion == "canary" else []
            named.extend(("retraining.promotion", a) for a in targets or ["production"])
        for key, alias in named:
            if alias not in declared:
                raise ValueError(
                    f"{key}: alias {alias!r} is not declared in release.aliases "
                    f"({', '.join(declared)})"
                )
        return self

    @property
    def primary_metric(self) -> MetricSpec | None:
        return self.metrics[0] if self.metrics else None


def _check_side(key: str, metric: str, higher: bool, side: str, what: str) -> None:
    wanted = worse_side(higher)
    if side != wanted:
        raise ValueError(
            f"{key}: {metric} is a metric where {direction_words(higher)}, so {what} "
            f"{side} the threshold would fire as it improves and never as it worsens; "
            f"use {wanted}"
        )
