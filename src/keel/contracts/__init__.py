"""Data contracts: infer them from reference data, check data against them, diff them.

    from datetime import UTC, datetime
    from keel.contracts import check_contract, dump_contract, infer_contract
    contract = infer_contract(reference, source="flights-2013-h1.csv.gz")
    report = check_contract(batch, contract, now=datetime.now(UTC))
    print(report.summary())

Pure: imports pyarrow, PyYAML and keel's errors and domain, nothing that stores, serves or prints.
The contract file format (`kind: keel/contract`, `version: 1`) is keel's own and stable.
"""

from keel.contracts.check import check_contract
from keel.contracts.diff import ChangeKind, SchemaChange, diff_contracts
from keel.contracts.infer import infer_contract
from keel.contracts.io import dump_contract, load_contract, read_contract, write_contract
from keel.contracts.model import (
    CONTRACT_KIND,
    CONTRACT_VERSION,
    LOGICAL_TYPES,
    ColumnContract,
    Contract,
    ContractMetadata,
    DomainValue,
    ExtraColumns,
    LogicalType,
    NumericRange,
    RowBounds,
    TimestampRule,
)
from keel.contracts.report import (
    RULES,
    CheckResult,
    ContractReport,
    Severity,
    Status,
    Violation,
    report_to_junit,
)

__all__ = [
    "CONTRACT_KIND",
    "CONTRACT_VERSION",
    "LOGICAL_TYPES",
    "RULES",
    "ChangeKind",
    "CheckResult",
    "ColumnContract",
    "Contract",
    "ContractMetadata",
    "ContractReport",
    "DomainValue",
    "ExtraColumns",
    "LogicalType",
    "NumericRange",
    "RowBounds",
    "SchemaChange",
    "Severity",
    "Status",
    "TimestampRule",
    "Violation",
    "check_contract",
    "diff_contracts",
    "dump_contract",
    "infer_contract",
    "load_contract",
    "read_contract",
    "report_to_junit",
    "write_contract",
]
