"""`project.contract_diff()`: the schema changes from one contract (or data) to another."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.contracts import Contract, SchemaChange
    from keel.workspace import Workspace

__all__ = ["ContractDiff", "contract_diff"]


@dataclass(frozen=True)
class ContractDiff:
    """Every schema change from `old` to `new` (contract files, or contracts inferred from
    data), each saying whether it breaks consumers. `ok` is false when any does."""

    old: str
    new: str
    changes: list[SchemaChange]
    before: Contract
    after: Contract

    @property
    def breaking(self) -> list[SchemaChange]:
        return [change for change in self.changes if change.breaking]

    @property
    def ok(self) -> bool:
        return not self.breaking

    def to_dict(self) -> dict[str, Any]:
        from keel.contracts.report import to_plain

        return {
            "ok": self.ok,
            "old": self.old,
            "new": self.new,
            "changes": [
                {
                    "kind": change.kind,
                    "column": change.column,
                    "breaking": change.breaking,
                    "reason": change.reason,
                    "old": to_plain(change.old),
                    "new": to_plain(change.new),
                }
                for change in self.changes
            ],
        }


def contract_diff(project: Workspace | None, old: str, new: str) -> ContractDiff:
    """The schema changes from `old` to `new` (as `keel contract diff`): each is a contract
    file (`.yaml`, or a file holding a keel contract) or data (a CSV or Parquet file, glob or
    folder; in a project also a dataset version), whose contract is inferred. Works without
    a project too (`keel.verbs.contract_diff(None, ...)`) on files."""
    from keel.contracts import diff_contracts

    before, old_name = _contract_from(project, old)
    after, new_name = _contract_from(project, new)
    return ContractDiff(old_name, new_name, diff_contracts(before, after), before, after)


def _contract_from(project: Workspace | None, ref: str) -> tuple[Contract, str]:
    """A contract file, or a contract inferred from data (a file or a dataset version)."""
    from keel.contracts import infer_contract, load_contract, read_contract
    from keel.verbs._data import load_data

    path = Path(ref)
    if path.suffix in {".yaml", ".yml"}:
        return read_contract(path), ref
    if path.is_file() and path.stat().st_size < 4 * 1024 * 1024:
        head = path.read_bytes()[:4096]
        if b"keel/contract" in head:
            return load_contract(path.read_text("utf-8"), source=ref), ref
    table, source, _ = load_data(project, ref)
    return infer_contract(table, source=source), source
