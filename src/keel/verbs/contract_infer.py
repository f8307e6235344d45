"""`project.contract_infer()`: a data contract inferred from reference data, and written."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    from keel.contracts import Contract
    from keel.workspace import Workspace

__all__ = ["InferredContract", "contract_infer"]


@dataclass(frozen=True)
class InferredContract:
    """The contract inferred from `source` (`rows` rows), as `text` (the YAML document a team
    reviews), where it was written (`output`, None when it was not), and `notices`: source
    columns left out, or data already stale under the freshness rule inferred for it."""

    contract: Contract
    text: str
    source: str
    rows: int
    output: Path | None = None
    notices: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows": self.rows,
            "columns": len(self.contract.columns),
            "output": None if self.output is None else str(self.output),
            "contract": self.text,
            "notices": self.notices,
        }


def contract_infer(
    project: Workspace | None,
    data: str,
    *,
    output: Path | str | None = None,
    timestamp: str | None = None,
    key: list[str] | None = None,
    max_categories: int = 30,
) -> InferredContract:
    """Infer a contract from reference `data` (a CSV or Parquet file, glob or folder; in a
    project also a dataset version: `latest`, an id or a unique prefix), as `keel contract
    infer`: `timestamp` names the time column (default: keel.yaml's data.timestamp, else
    detected), `key` the columns that must be unique together, and columns with at most
    `max_categories` distinct values get a domain. With `output`, the contract is written
    there (atomically). Works without a project too (`keel.verbs.contract_infer(None, ...)`)
    on files. `max_categories` below 1 is a `ConfigError`."""
    from keel.contracts import dump_contract, infer_contract, write_contract
    from keel.errors import ConfigError
    from keel.verbs._data import load_data

    if max_categories < 1:
        raise ConfigError(
            f"max_categories {max_categories} is below 1",
            problems=[("max_categories", "at least 1")],
        )
    if timestamp is None and project is not None and project.spec.data is not None:
        timestamp = project.spec.data.timestamp
    table, source, notices = load_data(project, data)
    inferred = infer_contract(
        table,
        timestamp=timestamp,
        key=key or None,
        max_categories=max_categories,
        source=source,
        inferred_at=datetime.now(UTC),
    )
    notices.extend(_stale_notice(table, inferred))
    target = None if output is None else Path(output)
    if target is not None:
        write_contract(inferred, target)
    return InferredContract(
        inferred, dump_contract(inferred), source, table.num_rows, target, notices
    )


def _stale_notice(table: pa.Table, contract: Contract) -> list[str]:
    """Data from the past (a public table, a backfill) breaks the freshness rule inferred for
    it from the start: say so now, not at the first `keel train`."""
    from keel.contracts import check_contract

    if contract.timestamp is None:
        return []
    report = check_contract(table, contract, now=datetime.now(UTC))
    for violation in report.errors:
        if violation.rule == "stale" and isinstance(violation.observed, dict):
            newest = violation.observed.get("newest")
            if not isinstance(newest, datetime):
                continue
            moment = newest.astimezone(UTC).isoformat().replace("+00:00", "Z")
            return [
                f"the newest {contract.timestamp.column} is {violation.observed.get('age')} old, "
                f"older than timestamp.freshness allows: this data is stale today, so train it "
                f"as of its time (`keel train --as-of {moment}`), or loosen the rule"
            ]
    return []
