"""Model versions loaded for serving, and how a model's traffic is split between them.

A `ServedVersion` is a registered version whose package was fetched, verified by hash,
loaded and warmed. A `Route` holds what one model serves: the production holder, the
canary holder with its traffic share, and shadow versions (scored, logged, never returned).
Routes are immutable: a reload builds a new one and swaps it in, so a request that already
picked a version finishes on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from keel.domain.digest import Digest
from keel.domain.model import ModelVersion
from keel.errors import ConfigError
from keel.models.signature import InferenceContract
from keel.serving.codec import Batch, to_frame

if TYPE_CHECKING:
    from keel.models.package import LoadedModel
    from keel.workspace import Workspace

__all__ = ["Route", "ServedVersion", "load_version", "synthetic_batch"]


@dataclass(frozen=True, eq=False)
class ServedVersion:
    """A loaded, verified, warmed model version."""

    model: str
    version: int
    package: Digest
    flavor: str
    contract: InferenceContract
    loaded: LoadedModel
    loaded_at: datetime
    load_seconds: float

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    def predict(self, batch: Batch) -> dict[str, list[Any]]:
        """Outputs by name, as JSON values, for the rows of a validated batch."""
        return self.predict_frame(to_frame(batch, self.contract))

    def predict_frame(self, frame: Any) -> dict[str, list[Any]]:
        import numpy as np

        names = {f.name for f in self.contract.outputs}
        predictions, probabilities = self.loaded.score(frame)
        outputs: dict[str, list[Any]] = {"prediction": np.asarray(predictions).tolist()}
        if "probability" in names and probabilities is not None:
            matrix = np.asarray(probabilities)
            column = matrix[:, 1] if matrix.ndim == 2 else matrix
            outputs["probability"] = column.tolist()
        return outputs


def synthetic_batch(contract: InferenceContract, rows: int = 1) -> Batch:
    """Plain values of each input's type: enough to exercise a model's code path once."""
    values: dict[str, Any] = {
        "integer": 0,
        "float": 0.0,
        "string": "",
        "boolean": False,
        "timestamp": datetime.now(UTC).replace(microsecond=0).isoformat(),
    }
    columns = {f.name: [values[f.type]] * rows for f in contract.inputs}
    return Batch(columns, rows)


def load_version(
    project: Workspace, version: ModelVersion, *, warm_with: Sequence[Batch] = ()
) -> ServedVersion:
    """Fetch, verify, load and warm a registered version.

    Warming predicts on `warm_with` (recent real requests) and must succeed; without them a
    synthetic row is tried and its failure tolerated (feature code may reject plain values).
    """
    from keel.models.loader import load_model
    from keel.release.usable import require_usable

    started = time.perf_counter()
    require_usable(project, version, to="be served")
    if not version.inference_contract:
        raise ConfigError(
            f"{version.ref} has no inference contract, so requests to it cannot be checked",
            hint="register versions through `keel train`, which records one",
        )
    contract = InferenceContract.from_dict(version.inference_contract)
    loaded = load_model(project, version)
    served = ServedVersion(
        model=version.model,
        version=version.version,
        package=version.package,
        flavor=version.flavor,
        contract=contract,
        loaded=loaded,
        loaded_at=datetime.now(UTC),
        load_seconds=0.0,
    )
    # Warming scores real rows, which count towards one pass (`LoadedModel.score`).
    if warm_with:
        for batch in warm_with:
            served.predict(batch)
    else:
        # Plain values may not suit the feature code; real requests warm it then.
        with contextlib.suppress(Exception):
            served.predict(synthetic_batch(contract))
    return dataclasses.replace(served, load_seconds=time.perf_counter() - started)


@dataclass(frozen=True)
class Route:
    """What one model serves, and how its requests are split."""

    model: str
    production: ServedVersion | None = None
    canary: ServedVersion | None = None
    canary_share: float = 0.0
    shadows: Mapping[str, ServedVersion] = field(default_factory=dict)  # alias -> version

    @property
    def ready(self) -> bool:
        return self.production is not None

    def pick(self, draw: float | None = None) -> tuple[ServedVersion, str]:
        """The version answering one request and its slot; canary with its share."""
        if self.production is None:
            raise LookupError(self.model)
        chance = random.random() if draw is None else draw  # noqa: S311 - traffic split, not security
        if self.canary is not None and chance < self.canary_share:
            return self.canary, "canary"
        return self.production, "production"

    def served(self) -> dict[int, ServedVersion]:
        """Every loaded version of this route, by number."""
        found: dict[int, ServedVersion] = {}
        for item in (self.production, self.canary, *self.shadows.values()):
            if item is not None:
                found[item.version] = item
        return found

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "production": None if self.production is None else self.production.version,
            "canary": None if self.canary is None else self.canary.version,
            "canary_share": self.canary_share if self.canary is not None else 0.0,
            "shadow": {alias: v.version for alias, v in self.shadows.items()},
        }
