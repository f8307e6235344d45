"""Where a project's data and stores are: `data:` and `storage:`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from keel.errors import ConfigError
from keel.spec._base import _describe, _Section

__all__ = ["DataSpec", "SqlSource", "StorageSpec"]


class StorageSpec(_Section):
    """Where metadata and artifacts live. `KEEL_DB_URL` and `KEEL_ARTIFACTS` override these."""

    db_url: str | None = None
    artifacts: str | None = None


class SqlSource(_Section):
    """A SQL query run through a SQLAlchemy URL."""

    query: str = Field(min_length=1)
    url: str = Field(min_length=1)


class DataSpec(_Section):
    """The raw data: where it is, its timestamp, target and key columns, and its contract.

    Every raw column except the target is a model input (a field every request must carry)
    unless `exclude` names it: excluded columns stay in the dataset version and its contract,
    but are never passed to `features.build`, required in requests, or profiled for drift
    (e.g. bike rentals' `casual` and `registered`, which add up to the target). The target,
    the timestamp and the entity key cannot be excluded.

    `snapshot` says how `keel data snapshot` (and `keel train`) record a version: `copy`
    stores the data as Parquet in keel's artifact store; `manifest` records a lake table's
    Parquet files (a folder, an `s3://` prefix or a Delta table) where they are, with their
    sizes and identities, and reads them back from there (docs/data.md).
    """

    source: str | SqlSource
    format: Literal["auto", "csv", "parquet"] = "auto"
    snapshot: Literal["copy", "manifest"] = "copy"
    timestamp: str | None = None
    target: str | None = None
    entity_key: list[str] = Field(default_factory=list)
    contract: str | None = None
    exclude: list[str] = Field(default_factory=list)

    @field_validator("exclude")
    @classmethod
    def _exclude_inputs_only(cls, value: list[str], info: ValidationInfo) -> list[str]:
        seen: set[str] = set()
        for name in value:
            if not name.strip():
                raise ValueError("expected column names, got an empty one")
            if name in seen:
                raise ValueError(f"column '{name}' is listed twice")
            seen.add(name)
        roles = [
            ("data.target", info.data.get("target")),
            ("data.timestamp", info.data.get("timestamp")),
            *(("data.entity_key", key) for key in info.data.get("entity_key") or []),
        ]
        for role, column in roles:
            if column in seen:
                raise ValueError(
                    f"column '{column}' is {role} and cannot be excluded "
                    "(exclude names raw columns that must not be model inputs)"
                )
        return value

    def model_inputs(self, columns: list[str]) -> list[str]:
        """The raw columns a model takes, in data order: all but the target and `exclude`.

        Raises ConfigError naming `data.exclude` for an excluded column the data lacks.
        """
        unknown = [name for name in self.exclude if name not in columns]
        if unknown:
            raise ConfigError(
                f"data.exclude: column '{unknown[0]}' is not in the data; "
                f"its columns are {', '.join(columns)}",
                problems=[("data.exclude", f"'{name}' is not a column") for name in unknown],
            )
        left_out = {self.target, *self.exclude}
        return [name for name in columns if name not in left_out]

    @field_validator("source", mode="before")
    @classmethod
    def _source_shape(cls, value: object) -> object:
        if not isinstance(value, str | dict | SqlSource):
            raise ValueError(
                "expected a path, glob or folder, or a mapping {query, url}, "
                f"got {_describe(value)}"
            )
        return value

    @field_validator("source")
    @classmethod
    def _source_not_blank(cls, value: str | SqlSource) -> str | SqlSource:
        if isinstance(value, str) and not value.strip():
            raise ValueError(
                "expected a path, glob or folder, or {query, url}; got an empty string"
            )
        return value

    @field_validator("entity_key", "exclude", mode="before")
    @classmethod
    def _one_key(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value
