"""The verbs behind `keel contract infer|diff`: the CLI's `--json` is the verb's result
document, on SQLite and on PostgreSQL; a Python user infers and compares contracts the same
way, in a project or on loose files."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from keel import ContractDiff, InferredContract
from keel.errors import ConfigError, DataError
from keel.verbs import contract_diff, contract_infer
from tests.fixtures.cli import Keel
from tests.verbs.test_verbs import Calls, _document, _open, _same, calls, flights

__all__ = ["calls", "flights"]  # fixtures shared with test_verbs.py


def test_contract_infer_prints_its_result_and_writes_the_file(
    keel: Keel, flights: Path, calls: Calls, tmp_path: Path
) -> None:
    out = tmp_path / "inferred.yaml"
    inferred = keel("-C", flights, "contract", "infer", "latest", "-o", out,
                    "--max-categories", "5", "--json")  # fmt: skip
    assert inferred.code == 0, inferred.out + inferred.err
    written = _same(inferred, calls, "contract_infer", InferredContract)
    assert written.output == out and out.read_text("utf-8") == written.text
    assert written.source.startswith("dataset ")
    # The project's keel.yaml names the timestamp column: the contract has its rule.
    assert written.contract.timestamp is not None

    with _open(flights) as project:
        again = project.contract_infer(str(flights / "raw.parquet"))
        assert (
            again.output is None
            and again.rows == pq.read_metadata(flights / "raw.parquet").num_rows
        )
        with pytest.raises(ConfigError) as bad:
            project.contract_infer("latest", max_categories=0)
        assert [field for field, _ in bad.value.problems] == ["max_categories"]
    alone = contract_infer(None, str(flights / "raw.parquet"), output=tmp_path / "loose.yaml")
    assert (tmp_path / "loose.yaml").read_text("utf-8") == alone.text
    with pytest.raises(DataError) as missing:
        contract_infer(None, str(tmp_path / "nope.csv"))
    assert missing.value.path == str(tmp_path / "nope.csv")
    assert not (tmp_path / "nope.yaml").exists()


def test_contract_diff_prints_its_result_and_verdict(
    keel: Keel, flights: Path, calls: Calls, tmp_path: Path
) -> None:
    contract = flights / "contracts" / "raw.yaml"
    same = keel("-C", flights, "contract", "diff", contract, "latest", "--json")
    compared = _same(same, calls, "contract_diff", ContractDiff)
    assert same.code == (0 if compared.ok else 1)
    assert compared.old == str(contract) and compared.new.startswith("dataset ")

    rows = pq.read_table(flights / "raw.parquet").slice(0, 500)
    pq.write_table(rows.drop_columns(["carrier"]), tmp_path / "less.parquet")
    broken = keel("-C", flights, "contract", "diff", contract, tmp_path / "less.parquet", "--json")
    assert broken.code == 1, broken.out + broken.err
    # Two files need no project: the command runs the verb on its own, as a user can.
    dropped = contract_diff(None, str(contract), str(tmp_path / "less.parquet"))
    assert _document(broken.json()) == _document(dropped.to_dict())
    assert broken.json()["ok"] is dropped.ok is False
    assert ("carrier", True) in [(c.column, c.breaking) for c in dropped.breaking]
    with _open(flights) as project:
        assert not project.contract_diff(str(contract), str(tmp_path / "less.parquet")).ok
    with pytest.raises(DataError) as missing:
        contract_diff(None, str(contract), str(tmp_path / "nope.parquet"))
    assert missing.value.path == str(tmp_path / "nope.parquet")
