"""`project.contract_check()`: data checked against its contract, with a verdict."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.contracts import Contract, ContractReport
    from keel.spec import EngineSpec
    from keel.workspace import Workspace

__all__ = ["ContractCheck", "contract_check"]


@dataclass(frozen=True)
class ContractCheck:
    """`source` (a path, or `dataset ID`) checked against the contract in the file
    `contract` (`expected`): each rule's result and every violation in `report`. `ok` is
    false on any error, and with `strict` on any warning too."""

    report: ContractReport
    source: str
    contract: Path
    expected: Contract
    strict: bool = False

    @property
    def ok(self) -> bool:
        return self.report.ok and not (self.strict and self.report.warnings)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.report.to_dict(),
            "ok": self.ok,
            "source": self.source,
            "contract": str(self.contract),
        }


def contract_check(
    project: Workspace | None,
    data: str,
    *,
    contract: Path | str | None = None,
    now: datetime | None = None,
    strict: bool = False,
    junit: Path | str | None = None,
    engine: str | EngineSpec | None = None,
) -> ContractCheck:
    """Check `data` (a CSV or Parquet file, glob or folder; in a project also a dataset
    version: `latest`, an id or a unique prefix) against `contract` (a contract file; default
    keel.yaml's data.contract), freshness as of `now` (default: now), as `keel contract
    check`. With `junit`, the results are also written there as JUnit XML for CI. Works
    without a project too (`keel.verbs.contract_check(None, ...)`) on files. No contract to
    check against is a `ConfigError`.

    `engine` (`local`, `spark`, or a whole `EngineSpec`; default: the project's keel.yaml
    `engine:`, else local) says where the data is read. Spark reads `data` (also `s3a://` and
    other paths Spark reads) partition by partition on the cluster and judges the merged
    figures with the same rules: the same verdicts and counts as local, samples taken in
    Spark's partition order. A dataset version is always checked in this process: asking for
    Spark by name for one is a `ConfigError`. On Spark, an `EngineError` when a job fails,
    `DependencyMissing` without the `spark` extra."""
    from keel.contracts import check_contract, read_contract, report_to_junit
    from keel.errors import ConfigError
    from keel.verbs._data import load_data, looks_like_path
    from keel.verbs._engine import engine_spec

    if contract is not None:
        path = Path(contract)
    elif project is not None and project.spec.data is not None and project.spec.data.contract:
        path = project.settings.project_dir / project.spec.data.contract
    else:
        raise ConfigError(
            "no contract to check against",
            hint="pass --contract FILE, or set data.contract in keel.yaml "
            "(`keel contract infer DATA -o FILE` writes one)",
        )
    expected = read_contract(path)
    moment = now or datetime.now(UTC)
    chosen = engine_spec(project, engine)
    # A dataset version is read back as keel stored it, in this process: keel.yaml's
    # engine.kind applies to files; only an explicit engine="spark" refuses it.
    version = project is not None and not looks_like_path(data)
    if chosen.kind == "spark" and version and engine is not None:
        rule = (
            f"{data!r} is not a file, folder or URL: a dataset version is checked in this "
            "process (leave out --engine spark), or give the files' own path"
        )
        raise ConfigError(rule, problems=[("engine", rule)])
    if chosen.kind == "spark" and not version:
        from keel.engines.spark_contract import check_source

        spark = chosen.spark_conf()
        report = check_source(data, expected, now=moment, master=chosen.master, conf=spark)
        source = data
    else:
        table, source, _notices = load_data(project, data)
        report = check_contract(table, expected, now=moment)
    if junit is not None:
        target = Path(junit)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.tmp")
        temp.write_text(report_to_junit(report, suite=f"keel contract {path.name}"), "utf-8")
        temp.replace(target)
    return ContractCheck(report, source, path, expected, strict)
