"""Reference profiles: what production is compared with.

A version's reference is the sketch of its run's holdout rows, as the prediction log would
hold them: the raw inputs the requests carry (`inputs.NAME`, typed by the inference
contract), the model's own outputs on them (`outputs.prediction`, `outputs.probability`),
and the label (`label`). The holdout is out of sample, so its score distribution and its
performance are what the model should show in production; with a time split it is also the
newest data the model saw.

A model-level record below the services: training records it, release checks a version
has one before it is usable, serving and monitoring compare against it.

`keel train` records it at registration (`record_reference`). A version registered before,
or one whose profile was lost to a crash between the two writes, gets it on first use
(`reference_for`): the same rows, the same code, the same sketch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.domain.model import ModelVersion
from keel.domain.monitoring import ReferenceProfile

if TYPE_CHECKING:
    from keel.stats.sketch import TableSketch
    from keel.workspace import Workspace

__all__ = [
    "LABEL_COLUMN",
    "REFERENCE_KIND",
    "REFERENCE_VERSION",
    "Reference",
    "build_reference",
    "record_reference",
    "reference_for",
]

_log = logging.getLogger(__name__)

#: The label's column in a reference sketch.
LABEL_COLUMN = "label"


#: The stored document: two sketches, since inputs and outputs describe different rows.
REFERENCE_KIND = "keel/reference"
REFERENCE_VERSION = 1


@dataclass(frozen=True)
class Reference:
    """A version's reference, and where it is recorded: `inputs` sketches the dataset's
    rows, `holdout` the outputs and labels; `sketch` is both, column by column."""

    profile: ReferenceProfile
    inputs: TableSketch
    holdout: TableSketch

    @property
    def sketch(self) -> TableSketch:
        from keel.stats.sketch import TableSketch

        return TableSketch(
            columns={**self.inputs.columns, **self.holdout.columns}, rows=self.inputs.rows
        )

    @property
    def features(self) -> list[str]:
        return [c for c in self.sketch.columns if c.startswith("inputs.")]

    @property
    def outputs(self) -> list[str]:
        return [c for c in self.sketch.columns if c.startswith("outputs.")]


def build_reference(
    project: Workspace, version: ModelVersion
) -> tuple[TableSketch, TableSketch, str]:
    """The sketch `version` is monitored against, its input row count and a description.

    Inputs: every row of the run's dataset (what the model learned from, training and
    holdout: a time-split holdout alone is a few weeks, too narrow a picture of the
    inputs). Outputs and labels: the holdout, scored now by the packaged model (out of
    sample, so the scores are what production should see, not what training memorised).
    """
    import numpy as np
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    from keel.data.snapshot import load_table
    from keel.domain.digest import Digest
    from keel.models.evaluation import load_evaluation_data
    from keel.models.loader import load_model
    from keel.stats.sketch import TableSketch

    data = load_evaluation_data(project, version, None)
    loaded = load_model(project, version)
    contract = version.inference_contract
    types = {str(f["name"]): str(f["type"]) for f in contract.get("inputs", [])}
    outputs = {str(f["name"]) for f in contract.get("outputs", [])}
    dataset = Digest.parse(str(data.description["dataset"]))
    rows = load_table(project, dataset)
    # Typed as the prediction log types a window: by the inference contract.
    inputs = TableSketch.of(
        pa.table(
            {
                f"inputs.{name}": _cast(rows.column(name), logical)
                for name, logical in types.items()
                if name in rows.column_names
            }
        )
    )
    raw = data.raw[[name for name in types if name in data.raw.columns]]
    predictions, probabilities = loaded.score(raw)
    scored: dict[str, Any] = {"outputs.prediction": pa.array(np.asarray(predictions).tolist())}
    if "probability" in outputs and probabilities is not None:
        matrix = np.asarray(probabilities)
        scored["outputs.probability"] = pa.array(
            (matrix[:, 1] if matrix.ndim == 2 else matrix).astype("float64")
        )
    scored[LABEL_COLUMN] = pa.array(np.asarray(data.labels).tolist())
    holdout = TableSketch.of(pa.table(scored))
    description = (
        f"inputs: dataset {dataset.short} ({inputs.rows:,} rows); outputs and labels: "
        f"{data.description['selection']} ({len(raw):,} rows)"
    )
    return inputs, holdout, description


def _cast(column: Any, logical: str | None) -> Any:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    target = {
        "integer": pa.int64(),
        "float": pa.float64(),
        "boolean": pa.bool_(),
        "string": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),  # as the prediction log stores dates
    }.get(logical or "")
    if target is None or column.type == target:
        return column
    try:
        if logical == "timestamp":
            from keel.domain.times import to_utc

            return to_utc(column)  # any unit or zone, a date as its midnight
        return column.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        return column


def record_reference(project: Workspace, version: ModelVersion) -> Reference:
    """Build, store and record `version`'s reference (the first one recorded is kept)."""
    import json

    inputs, holdout, source = build_reference(project, version)
    data = json.dumps(
        {
            "kind": REFERENCE_KIND,
            "version": REFERENCE_VERSION,
            "inputs": inputs.to_dict(),
            "holdout": holdout.to_dict(),
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    record = project.metadata.artifacts.record(
        project.artifacts.put_bytes(data).digest,
        size=len(data),
        media_type="application/json",
        actor=project.settings.user,
    )
    profile = project.metadata.monitoring.put_reference(
        version.model, version.version, record.digest, row_count=inputs.rows, source=source
    )
    if profile.profile != str(record.digest):  # another process recorded it first
        return _load(project, profile)
    return Reference(profile, inputs, holdout)


def reference_for(project: Workspace, version: ModelVersion) -> Reference:
    """`version`'s recorded reference, built and recorded now if it has none yet."""
    profile = project.metadata.monitoring.reference(version.model, version.version)
    if profile is None:
        _log.info("%s has no reference profile yet: building it", version.ref)
        return record_reference(project, version)
    return _load(project, profile)


def _load(project: Workspace, profile: ReferenceProfile) -> Reference:
    import json

    from keel.domain.digest import Digest
    from keel.errors import IntegrityError
    from keel.stats.sketch import TableSketch

    document = json.loads(project.artifacts.read_bytes(Digest.parse(profile.profile)))
    if not isinstance(document, dict) or document.get("kind") != REFERENCE_KIND:
        raise IntegrityError(
            f"the reference profile of {profile.model}@{profile.version} is not a keel "
            "reference document"
        )
    if document.get("version") != REFERENCE_VERSION:
        raise IntegrityError(
            f"the reference profile of {profile.model}@{profile.version} has version "
            f"{document.get('version')!r}; this keel reads version {REFERENCE_VERSION}",
            hint="upgrade keel",
        )
    return Reference(
        profile,
        TableSketch.from_dict(document["inputs"]),
        TableSketch.from_dict(document["holdout"]),
    )
