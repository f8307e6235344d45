"""The contract file: a versioned YAML document (`kind: keel/contract`, `version: 1`).

    kind: keel/contract
    version: 1
    metadata: {inferred_from: flights.csv.gz, inferred_at: '2024-05-01T12:00:00+00:00', ...}
    rows: {min: 83079, max: 249237}
    key: [year, month, day, carrier, flight, origin]
    timestamp: {column: time_hour, freshness: 36h}
    extra_columns: warn              # or error, or allow
    columns:
      dep_delay:
        type: integer                # integer | float | string | boolean | timestamp | date
        nullable: true
        null_rate: {max: 0.0494}
        range: {min: -167, max: 1435}
      carrier:
        type: string
        nullable: false
        domain: [9E, AA, AS, B6, ...]

Loading checks every key and reports every problem at once, each with its key path, e.g.
`columns.dep_delay.range.min: expected a number, got 'x'`. A newer format version is refused with
a message saying so, rather than misread.
"""

from __future__ import annotations

import contextlib
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from keel.contracts.model import (
    CONTRACT_KIND,
    CONTRACT_VERSION,
    LOGICAL_TYPES,
    ColumnContract,
    Contract,
    ContractMetadata,
    DomainValue,
    NumericRange,
    RowBounds,
    TimestampRule,
)
from keel.domain.duration import format_duration, parse_duration
from keel.errors import ConfigError, NotFound

__all__ = ["dump_contract", "load_contract", "read_contract", "write_contract"]

_HEADER = (
    "# A keel data contract: the schema and statistics data must keep.\n"
    "# Review it like code (tighten or loosen bounds), commit it, and check data with\n"
    "# `keel contract check DATA --contract FILE`.\n"
)
_TOP_KEYS = ("kind", "version", "metadata", "rows", "key", "timestamp", "extra_columns", "columns")
_COLUMN_KEYS = ("type", "nullable", "null_rate", "range", "domain")
_EXTRA = ("warn", "error", "allow")


# -- dumping --------------------------------------------------------------------------------


class _Flow(list[Any]):
    """A list written on one line: `[a, b]`."""


class _FlowMap(dict[str, Any]):
    """A mapping written on one line: `{min: 0, max: 7}`."""


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        # Anchors and aliases (&id001) would puzzle reviewers; values are small, repeat them.
        return True


_Dumper.add_representer(
    _Flow, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", list(v), flow_style=True)
)
_Dumper.add_representer(
    _FlowMap, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", dict(v), flow_style=True)
)


def dump_contract(contract: Contract) -> str:
    """The contract as the YAML document teams review; `load_contract` reads it back equal."""
    document: dict[str, Any] = {"kind": CONTRACT_KIND, "version": CONTRACT_VERSION}
    meta = contract.metadata
    document["metadata"] = {
        "inferred_from": meta.inferred_from,
        "inferred_at": meta.inferred_at.isoformat() if meta.inferred_at else None,
        "keel_version": meta.keel_version,
    }
    if contract.rows is not None:
        document["rows"] = _FlowMap(min=contract.rows.min, max=contract.rows.max)
    if contract.key:
        document["key"] = _Flow(contract.key)
    if contract.timestamp is not None:
        document["timestamp"] = _FlowMap(
            column=contract.timestamp.column,
            freshness=format_duration(contract.timestamp.freshness),
        )
    document["extra_columns"] = contract.extra_columns
    document["columns"] = {column.name: _dump_column(column) for column in contract.columns}
    body = yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    return _HEADER + body


def _dump_column(column: ColumnContract) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": column.type, "nullable": column.nullable}
    if column.max_null_rate is not None:
        entry["null_rate"] = _FlowMap(max=column.max_null_rate)
    if column.range is not None:
        entry["range"] = _FlowMap(min=column.range.min, max=column.range.max)
    if column.domain is not None:
        entry["domain"] = _Flow(column.domain)
    return entry


def write_contract(contract: Contract, path: str | os.PathLike[str]) -> None:
    """Write the contract file atomically: a reader never sees half a contract."""
    target = Path(path)
    text = dump_contract(contract)
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise ConfigError(
            f"{target}: cannot write the contract: {exc.strerror or exc}",
            hint="choose a writable path with -o",
        ) from None


# -- loading --------------------------------------------------------------------------------


def read_contract(path: str | os.PathLike[str]) -> Contract:
    """Read a contract file. Raises NotFound when it is missing, ConfigError when it is invalid."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(
            f"{path}: no such contract file",
            hint=f"infer one with `keel contract infer DATA -o {path}`",
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: a contract file must be UTF-8 text (byte offset {exc.start} is not)",
            problems=[("", "not UTF-8")],
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return load_contract(text, source=os.fspath(path))


def load_contract(text: str, *, source: str = "<contract>") -> Contract:
    """Parse and validate a contract document; every problem is listed with its key path."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"{source}: not valid YAML{where}: {problem}", problems=[("", str(problem))]
        ) from None
    if not isinstance(document, dict):
        raise ConfigError(
            f"{source}: expected a mapping with `kind: {CONTRACT_KIND}`, got {_name(document)}",
            problems=[("", "expected a mapping")],
        )
    _check_kind_and_version(document, source)
    return _Reader(source).contract(document)


def _check_kind_and_version(document: dict[Any, Any], source: str) -> None:
    kind = document.get("kind")
    if kind != CONTRACT_KIND:
        raise ConfigError(
            f"{source}: kind: expected '{CONTRACT_KIND}', got {kind!r}",
            problems=[("kind", f"expected '{CONTRACT_KIND}', got {kind!r}")],
        )
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ConfigError(
            f"{source}: version: expected an integer, got {version!r}",
            problems=[("version", f"expected an integer, got {version!r}")],
        )
    if version != CONTRACT_VERSION:
        raise ConfigError(
            f"{source}: contract format version {version} is not supported "
            f"(this keel reads version {CONTRACT_VERSION})",
            problems=[("version", f"unsupported version {version}")],
            hint="upgrade keel to read newer contracts"
            if version > CONTRACT_VERSION
            else "re-infer the contract with this keel",
        )


class _Reader:
    """Reads a parsed document into a Contract, collecting (key path, rule) problems."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[tuple[str, str]] = []

    def problem(self, path: str, rule: str) -> None:
        self.problems.append((path, rule))

    def contract(self, document: dict[Any, Any]) -> Contract:
        self.unknown_keys(document, "", _TOP_KEYS)
        columns = self.columns(document.get("columns"))
        names = {column.name: column for column in columns}
        extra = document.get("extra_columns", "warn")
        if extra not in _EXTRA:
            self.problem("extra_columns", f"expected one of {', '.join(_EXTRA)}, got {extra!r}")
            extra = "warn"
        contract = Contract(
            columns=tuple(columns),
            key=self.key(document.get("key"), names),
            timestamp=self.timestamp(document.get("timestamp"), names),
            rows=self.rows(document.get("rows")),
            extra_columns=extra,
            metadata=self.metadata(document.get("metadata")),
        )
        if self.problems:
            first = "; ".join(f"{path}: {rule}" for path, rule in self.problems[:3])
            more = f" (and {len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
            raise ConfigError(
                f"{self.source}: invalid contract: {first}{more}", problems=self.problems
            )
        return contract

    # -- sections ---------------------------------------------------------------------------

    def metadata(self, value: Any) -> ContractMetadata:
        if value is None:
            return ContractMetadata()
        if not self.mapping(value, "metadata"):
            return ContractMetadata()
        self.unknown_keys(value, "metadata", ("inferred_from", "inferred_at", "keel_version"))
        inferred_at = value.get("inferred_at")
        if isinstance(inferred_at, str):
            try:
                inferred_at = datetime.fromisoformat(inferred_at)
            except ValueError:
                self.problem(
                    "metadata.inferred_at", f"expected an ISO-8601 time, got {inferred_at!r}"
                )
                inferred_at = None
        elif inferred_at is not None and not isinstance(inferred_at, datetime):
            self.problem("metadata.inferred_at", f"expected an ISO-8601 time, got {inferred_at!r}")
            inferred_at = None
        return ContractMetadata(
            inferred_from=self.optional_text(value.get("inferred_from"), "metadata.inferred_from"),
            inferred_at=inferred_at,
            keel_version=self.optional_text(value.get("keel_version"), "metadata.keel_version"),
        )

    def rows(self, value: Any) -> RowBounds | None:
        if value is None or not self.mapping(value, "rows"):
            return None
        self.unknown_keys(value, "rows", ("min", "max"))
        low = self.count(value.get("min"), "rows.min")
        high = self.count(value.get("max"), "rows.max")
        if low is not None and high is not None and low > high:
            self.problem("rows", f"min {low} is above max {high}")
        return RowBounds(low, high)

    def key(self, value: Any, columns: dict[str, ColumnContract]) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            self.problem("key", f"expected a list of column names, got {value!r}")
            return ()
        names: list[str] = []
        for position, name in enumerate(value):
            if not isinstance(name, str):
                self.problem(f"key[{position}]", f"expected a column name, got {name!r}")
            elif columns and name not in columns:
                self.problem(f"key[{position}]", f"'{name}' is not a column of the contract")
            else:
                names.append(name)
        return tuple(names)

    def timestamp(self, value: Any, columns: dict[str, ColumnContract]) -> TimestampRule | None:
        if value is None or not self.mapping(value, "timestamp"):
            return None
        self.unknown_keys(value, "timestamp", ("column", "freshness"))
        name = value.get("column")
        ok = True
        if not isinstance(name, str):
            self.problem("timestamp.column", f"expected a column name, got {name!r}")
            ok = False
        elif columns and name not in columns:
            self.problem("timestamp.column", f"'{name}' is not a column of the contract")
            ok = False
        elif columns and columns[name].type not in ("timestamp", "date"):
            self.problem("timestamp.column", f"'{name}' is {columns[name].type}, not a timestamp")
            ok = False
        text = value.get("freshness")
        if not isinstance(text, str):
            self.problem("timestamp.freshness", f"expected a duration like 36h, got {text!r}")
            return None
        try:
            freshness = parse_duration(text)
        except ValueError as exc:
            self.problem("timestamp.freshness", str(exc))
            return None
        return TimestampRule(name, freshness) if ok else None

    def columns(self, value: Any) -> list[ColumnContract]:
        if not isinstance(value, dict) or not value:
            self.problem("columns", f"expected a mapping of column names, got {_name(value)}")
            return []
        columns = []
        for name, spec in value.items():
            path = f"columns.{name}"
            if not isinstance(name, str):
                self.problem(path, f"a column name must be text, got {name!r}")
                continue
            column = self.column(name, spec, path)
            if column is not None:
                columns.append(column)
        return columns

    def column(self, name: str, spec: Any, path: str) -> ColumnContract | None:
        if not self.mapping(spec, path):
            return None
        self.unknown_keys(spec, path, _COLUMN_KEYS)
        kind = spec.get("type")
        if kind not in LOGICAL_TYPES:
            self.problem(
                f"{path}.type", f"expected one of {', '.join(LOGICAL_TYPES)}, got {kind!r}"
            )
            return None
        nullable = spec.get("nullable", True)
        if not isinstance(nullable, bool):
            self.problem(f"{path}.nullable", f"expected true or false, got {nullable!r}")
            nullable = True
        return ColumnContract(
            name,
            kind,
            nullable=nullable,
            max_null_rate=self.null_rate(spec.get("null_rate"), f"{path}.null_rate"),
            range=self.range(spec.get("range"), f"{path}.range", kind),
            domain=self.domain(spec.get("domain"), f"{path}.domain", kind),
        )

    def null_rate(self, value: Any, path: str) -> float | None:
        if value is None or not self.mapping(value, path):
            return None
        self.unknown_keys(value, path, ("max",))
        bound = self.number(value.get("max"), f"{path}.max")
        if bound is not None and not 0 <= bound <= 1:
            self.problem(f"{path}.max", f"expected a rate between 0 and 1, got {bound!r}")
            return None
        return None if bound is None else float(bound)

    def range(self, value: Any, path: str, kind: str) -> NumericRange | None:
        if value is None or not self.mapping(value, path):
            return None
        if kind not in ("integer", "float"):
            self.problem(path, f"a range needs an integer or float column, not {kind}")
            return None
        self.unknown_keys(value, path, ("min", "max"))
        low = self.number(value.get("min"), f"{path}.min")
        high = self.number(value.get("max"), f"{path}.max")
        if low is not None and high is not None and low > high:
            self.problem(path, f"min {low} is above max {high}")
        return NumericRange(low, high)

    def domain(self, value: Any, path: str, kind: str) -> tuple[DomainValue, ...] | None:
        if value is None:
            return None
        if kind not in ("string", "integer"):
            self.problem(path, f"a domain needs a string or integer column, not {kind}")
            return None
        if not isinstance(value, list) or not value:
            self.problem(path, f"expected a list of allowed values, got {value!r}")
            return None
        wanted = str if kind == "string" else int
        values: list[DomainValue] = []
        for position, item in enumerate(value):
            if not isinstance(item, wanted) or isinstance(item, bool):
                hint = " (quote it)" if kind == "string" else ""
                self.problem(f"{path}[{position}]", f"expected {_a(kind)}, got {item!r}{hint}")
            else:
                values.append(item)
        return tuple(values)

    # -- scalars ----------------------------------------------------------------------------

    def mapping(self, value: Any, path: str) -> bool:
        if isinstance(value, dict):
            return True
        self.problem(path, f"expected a mapping, got {_name(value)}")
        return False

    def unknown_keys(self, value: dict[Any, Any], path: str, known: tuple[str, ...]) -> None:
        for key in value:
            if key not in known:
                where = f"{path}.{key}" if path else str(key)
                self.problem(where, f"unknown key (expected one of {', '.join(known)})")

    def number(self, value: Any, path: str) -> int | float | None:
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        self.problem(path, f"expected a number, got {value!r}")
        return None

    def count(self, value: Any, path: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        self.problem(path, f"expected a whole number of rows, got {value!r}")
        return None

    def optional_text(self, value: Any, path: str) -> str | None:
        if value is None or isinstance(value, str):
            return value
        self.problem(path, f"expected text, got {value!r}")
        return None


def _a(kind: str) -> str:
    return "an integer" if kind == "integer" else "a string"


def _name(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"[:80]
