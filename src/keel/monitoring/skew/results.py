"""What skew measurement returns: per-feature row mismatches, examples, drift results."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from keel.serial import dump

if TYPE_CHECKING:
    from keel.stats.drift import DriftResult

__all__ = ["EXAMPLES", "FeatureSkew", "RowSkewReport", "SkewExample", "SkewReport"]


#: Mismatched rows shown per feature.
EXAMPLES: Final = 5


@dataclass(frozen=True)
class SkewExample:
    """One logged request whose feature disagrees with its offline recomputation.

    `key` maps each entity-key column to the request's value; `online` is the feature as
    computed from the logged request, `offline` as computed from the offline raw row (JSON
    values: None for missing, times as ISO 8601). `prediction_id` is for `keel explain`.
    """

    prediction_id: str
    key: Mapping[str, Any]
    online: Any
    offline: Any

    def to_dict(self) -> dict[str, Any]:
        return dump(self)


@dataclass(frozen=True)
class FeatureSkew:
    """How often one feature differs between serving and its offline recomputation.

    `compared` rows were matched with an offline row; `mismatches` of them disagree (numbers:
    not within the report's tolerance, NaN matching NaN only; other values: not equal, missing
    matching missing only). `missing_online` counts mismatches where only the online value is
    missing (a field serving did not fill), `missing_offline` the reverse. `examples` are the
    first few mismatched requests, oldest first.
    """

    feature: str
    compared: int
    mismatches: int
    missing_online: int = 0
    missing_offline: int = 0
    examples: tuple[SkewExample, ...] = ()

    @property
    def mismatch_rate(self) -> float | None:
        """`mismatches / compared`; None when no row was compared."""
        return self.mismatches / self.compared if self.compared else None

    def to_dict(self) -> dict[str, Any]:
        return dump(self, after={"mismatches": {"mismatch_rate": self.mismatch_rate}})


@dataclass(frozen=True)
class RowSkewReport:
    """Row-level skew of one model version over a window of logged predictions.

    Of the `predictions` the version logged in `[start, end)` (the newest `limit` if one was
    given), `without_key` lack a value for some entity-key column, `without_match` have a key no
    row of dataset `source` has, `ambiguous` have a key several offline rows share (not
    compared), and the other `compared` rows were compared feature by feature. `source` is the
    dataset version id; `source_is_training` says whether it is the one the version was
    trained on. Numbers match when `|online - offline| <= tolerance * (1 + |offline|)`.
    """

    model: str
    version: int
    start: datetime
    end: datetime
    entity_key: tuple[str, ...]
    source: str
    source_is_training: bool
    tolerance: float
    predictions: int
    without_key: int
    without_match: int
    ambiguous: int
    compared: int
    features: tuple[FeatureSkew, ...]

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    @property
    def max_mismatch_rate(self) -> float | None:
        """The highest mismatch rate of any feature; None when nothing was compared."""
        rates = [f.mismatch_rate for f in self.features if f.mismatch_rate is not None]
        return max(rates) if rates else None

    def above(self, max_mismatch: float) -> list[FeatureSkew]:
        """Features whose mismatch rate is above `max_mismatch` (a share, 0.01 = 1%)."""
        return [
            f
            for f in self.features
            if f.mismatch_rate is not None and f.mismatch_rate > max_mismatch
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "ref": self.ref,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "entity_key": list(self.entity_key),
            "source": {"dataset": self.source, "training": self.source_is_training},
            "tolerance": self.tolerance,
            "predictions": self.predictions,
            "without_key": self.without_key,
            "without_match": self.without_match,
            "ambiguous": self.ambiguous,
            "compared": self.compared,
            "max_mismatch_rate": self.max_mismatch_rate,
            "features": [feature.to_dict() for feature in self.features],
        }


@dataclass(frozen=True)
class SkewReport:
    """Both views of one window, computed from one read of the prediction log: what
    `keel skew` prints. `distribution` compares training features (reference) with serving
    features (current), one result per feature."""

    row: RowSkewReport
    distribution: tuple[DriftResult, ...]

    @property
    def drifted(self) -> list[str]:
        return [result.column for result in self.distribution if result.drifted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.row.model,
            "version": self.row.version,
            "start": self.row.start.isoformat(),
            "end": self.row.end.isoformat(),
            "distribution": [result.to_dict() for result in self.distribution],
            "drifted": self.drifted,
            "rows": self.row.to_dict(),
        }
