"""The verbs behind `keel smoke-test`, `keel contract-test`, `keel ci init|summary`, `keel
deploy render` and `keel env check`: the CLI's `--json` is the verb's result document, on
SQLite and on PostgreSQL, and a Python user gets the same with the same checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel import (
    CiSummary,
    CiWorkflow,
    ContractTestResult,
    EnvironmentCheck,
    RenderResult,
    SmokeResult,
)
from keel.errors import ConfigError, Conflict, DataError, NotFound
from keel.verbs import ci_summary
from tests.fixtures.cli import Keel
from tests.fixtures.trained import MODEL
from tests.verbs.test_verbs import Calls, _document, _open, _same, calls, flights

__all__ = ["calls", "flights"]  # fixtures shared with test_verbs.py


def test_smoke_and_contract_tests_print_their_results(
    keel: Keel, flights: Path, calls: Calls, tmp_path: Path
) -> None:
    smoked = keel("-C", flights, "smoke-test", "--rows", "300", "--junit",
                  tmp_path / "smoke.xml", "--json")  # fmt: skip
    smoke = _same(smoked, calls, "smoke_test", SmokeResult)
    assert smoked.code == (0 if smoke.ok else 1) and smoke.rows == 300
    assert (tmp_path / "smoke.xml").read_text("utf-8").startswith("<?xml")

    tested = keel("-C", flights, "contract-test", f"{MODEL}@1", "--rows", "20", "--junit",
                  tmp_path / "inference.xml", "--json")  # fmt: skip
    assert tested.code == 0, tested.out + tested.err
    checks = _same(tested, calls, "contract_test", ContractTestResult)
    assert checks.ok and checks.ref == f"{MODEL}@1" and checks.target == "local"

    summed = keel("ci", "summary", tmp_path, "--json")
    assert summed.code == 0, summed.err
    summary = ci_summary(None, [tmp_path])
    assert isinstance(summary, CiSummary)
    assert _document(summed.json()) == _document(summary.to_dict())
    assert {s["suite"] for s in summary.suites} == {
        s.suite.name for s in (smoke, checks)
    } and summary.to_markdown().startswith("### keel checks")

    with _open(flights) as project:
        with pytest.raises(ConfigError) as bad_url:
            project.contract_test(f"{MODEL}@1", url="ftp://example.com")
        assert [field for field, _ in bad_url.value.problems] == ["url"]
        with pytest.raises(NotFound, match="9"):
            project.contract_test(f"{MODEL}@9")
        with pytest.raises(ConfigError):
            project.smoke_test(rows=5)
    with pytest.raises(DataError) as missing:
        ci_summary(None, [tmp_path / "gone.xml"])
    assert missing.value.path == str(tmp_path / "gone.xml")


def test_ci_workflow_prints_its_result(keel: Keel, flights: Path, calls: Calls) -> None:
    written = keel("-C", flights, "ci", "init", "github", "--as-of", "2013-12-31T00:00:00",
                   "--json")  # fmt: skip
    assert written.code == 0, written.out + written.err
    workflow = _same(written, calls, "ci_workflow", CiWorkflow)
    assert workflow.path == flights / ".github" / "workflows" / "keel.yml"
    assert "--as-of 2013-12-31T00:00:00Z" in workflow.path.read_text("utf-8")

    with _open(flights) as project:
        with pytest.raises(Conflict):
            project.ci_workflow("github")  # replaced only with force
        assert project.ci_workflow("gitlab", branch="release").branch == "release"
        with pytest.raises(ConfigError) as bad:
            project.ci_workflow("jenkins")  # type: ignore[arg-type]
        assert [field for field, _ in bad.value.problems] == ["kind"]


def test_deploy_render_and_env_check_print_their_results(
    keel: Keel, flights: Path, calls: Calls, tmp_path: Path
) -> None:
    out = tmp_path / "k8s"
    rendered = keel("-C", flights, "deploy", "render", "kubernetes", "--model", f"{MODEL}@1",
                    "-o", out, "--json")  # fmt: skip
    assert rendered.code == 0, rendered.out + rendered.err
    result = _same(rendered, calls, "deploy_render", RenderResult)
    assert result.output == out and all((out / name).is_file() for name in result.files)

    checked = keel("-C", flights, "env", "check", f"{MODEL}@1", "--json")
    env = _same(checked, calls, "env_check", EnvironmentCheck)
    assert checked.code == (0 if env.ok else 1) and env.model == f"{MODEL}@1"

    with _open(flights) as project:
        again = project.deploy_render("kubernetes", f"{MODEL}@1", tmp_path / "again")
        assert sorted(again.files) == sorted(result.files)
        with pytest.raises(ConfigError):
            project.deploy_render("helm", f"{MODEL}@1", tmp_path / "helm")  # type: ignore[arg-type]
        assert not (tmp_path / "helm").exists()
        with pytest.raises(NotFound, match="nope"):
            project.env_check("nope@1")
        with pytest.raises(ConfigError):
            project.env_check("bad name@1")
