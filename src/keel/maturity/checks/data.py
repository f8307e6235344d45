"""Data change management: contracts, snapshots, freshness and skew for the data behind
production."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from keel.domain.duration import format_duration
from keel.maturity.checks.production import _NOTHING_IN_PRODUCTION, _item, _per_version, _Production
from keel.maturity.model import Item, Status

if TYPE_CHECKING:
    from keel.contracts import Contract
    from keel.workspace import Workspace

__all__: list[str] = []


_SKEW_SIGNALS: Final = frozenset({"row_skew", "distribution_skew"})


def _data(project: Workspace, production: Sequence[_Production]) -> list[Item]:
    from keel.contracts import read_contract
    from keel.errors import KeelError
    from keel.models.evaluation import contract_evidence

    spec = project.spec
    data = spec.data
    contract = None
    contract_problem = None
    if data is None:
        contract_problem = "keel.yaml has no data section"
    elif not data.contract:
        contract_problem = "keel.yaml names no data.contract"
    else:
        try:
            contract = read_contract(project.settings.project_dir / data.contract)
        except KeelError as exc:
            contract_problem = f"{data.contract} cannot be read: {exc.message}"

    def checked(p: _Production) -> tuple[Status, str]:
        try:
            found = contract_evidence(project, p.version)
        except KeelError as exc:
            return "fail", f"{p.ref}: its contract report cannot be read: {exc.message}"
        if not found.checked:
            return "partial", f"{p.ref}: its training data was not checked"
        if not found.ok:
            return "fail", f"{p.ref}: its training data {found.detail}"
        return "pass", f"{p.ref}: training data {found.detail}"

    source = data.source if data is not None and isinstance(data.source, str) else "DATA"
    if contract_problem is not None:
        contract_status: Status = "fail"
        contract_text = contract_problem
        contract_fix = (
            f"keel contract infer {source} -o contracts/data.yaml; "
            "keel.yaml: data.contract: contracts/data.yaml"
        )
    else:
        contract_status, contract_text = _per_version(production, checked)
        if contract_status == "n/a":
            contract_status = "partial"
            contract_text = f"{data.contract if data else ''} configured; {_NOTHING_IN_PRODUCTION}"
        contract_fix = "keel train, then keel promote MODEL@NEW --to production"
    contract_item = _item(
        "data",
        "data.contract",
        "data contract configured and checked for production",
        contract_status,
        contract_text,
        contract_fix,
    )

    freshness = spec.monitoring.freshness
    found_rules = []
    missing = []
    times = _time_columns(project, contract)
    if contract is not None and contract.timestamp is not None:
        rule = contract.timestamp
        if freshness.data is not False:
            found_rules.append(
                f"data: {rule.column} at most {format_duration(rule.freshness)} old (contract)"
            )
        else:
            missing.append("monitoring.freshness.data: true")
    elif times == [] and freshness.data_limit is not None:
        # No time column to hold to a rule: the source's own time is what can be checked.
        basis = (
            "the source file's modification time"
            if data is not None and isinstance(data.source, str)
            else "the SQL source's newest snapshot time"
        )
        found_rules.append(
            f"data: at most {format_duration(freshness.data_limit)} old by {basis} "
            "(the data has no time column)"
        )
    elif times == []:
        missing.append(
            "monitoring.freshness.data: <how old the source may be, e.g. 2d> "
            "(the data has no time column: freshness is the source's modification "
            "or snapshot time)"
        )
    elif times is None:
        missing.append(
            "a contract timestamp rule (keel contract infer --timestamp COLUMN), or for data "
            "without a time column monitoring.freshness.data: <max age, e.g. 2d>"
        )
    else:
        missing.append(f"a contract timestamp rule (keel contract infer --timestamp {times[0]})")
    if freshness.predictions is not None:
        found_rules.append(f"predictions at most {format_duration(freshness.predictions)} apart")
    else:
        missing.append("monitoring.freshness.predictions: 1h")
    fresh_status: Status = "pass" if not missing else "partial" if found_rules else "fail"
    freshness_item = _item(
        "data",
        "data.freshness",
        "freshness checked for data and predictions",
        fresh_status,
        "; ".join(found_rules) or "no freshness check",
        "add " + " and ".join(missing),
    )

    entity = data.entity_key if data is not None else []
    if not entity or not spec.monitoring.skew:
        skew_status: Status = "fail"
        skew_text = (
            "monitoring.skew is false"
            if entity
            else "keel.yaml names no data.entity_key: served rows cannot be matched offline"
        )
        skew_fix = (
            "keel.yaml: monitoring.skew: true"
            if entity
            else "keel.yaml: data.entity_key: [<columns identifying a row>]"
        )
    else:
        recorded: dict[str, int] = {}
        for p in production:
            recorded[p.ref] = len(
                project.metadata.monitoring.latest_metrics(
                    p.version.model, signals=sorted(_SKEW_SIGNALS)
                )
            )

        def skew(p: _Production) -> tuple[Status, str]:
            count = recorded.get(p.ref, 0)
            if count == 0:
                return "partial", f"{p.version.model}: configured, no skew measured yet"
            return "pass", f"{p.version.model}: {count} skew signal(s) recorded"

        skew_status, skew_text = _per_version(production, skew)
        if skew_status == "n/a":
            skew_status = "partial"
            skew_text = f"entity key {', '.join(entity)}; {_NOTHING_IN_PRODUCTION}"
        skew_fix = "keel monitor MODEL (measures skew on the newest window)"
    skew_item = _item(
        "data",
        "data.skew",
        "training-serving skew measured",
        skew_status,
        skew_text,
        skew_fix,
    )
    return [contract_item, freshness_item, skew_item]


def _time_columns(project: Workspace, contract: Contract | None) -> list[str] | None:
    """The data's timestamp and date columns: from its contract, else its newest dataset
    version; None when neither is there to tell."""
    if contract is not None:
        return [c.name for c in contract.columns if c.type in ("timestamp", "date")]
    versions = project.metadata.datasets.list(limit=1)
    if not versions:
        return None
    return [name for name, kind in versions[0].columns if kind.startswith(("timestamp", "date"))]
