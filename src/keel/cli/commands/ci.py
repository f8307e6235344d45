"""`keel ci init|summary`, `keel smoke-test` and `keel contract-test`: keel in CI pipelines."""

from __future__ import annotations

from pathlib import Path

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.errors import EXIT_CHECK_FAILED, EXIT_OK
from keel.cli.output import emit, json_option, parse_time

__all__ = ["ci", "contract_test", "smoke_test"]

_junit_option = click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the results as JUnit XML for CI.",
)


def _cases_text(title: str, cases: list[dict[str, object]], verdict: str) -> str:
    marks = {"passed": "PASS", "failed": "FAIL", "skipped": "skip"}
    lines = [title]
    for case in cases:
        message = str(case.get("message") or "")
        line = f"  {marks[str(case['status'])]}  {case['name']}"
        lines.append(f"{line}: {message}" if message else line)
        details = str(case.get("details") or "")
        if case["status"] == "failed" and details and details != message:
            lines.extend(f"        {text}" for text in details.splitlines()[:12])
    lines.append(verdict)
    return "\n".join(lines)


@click.group()
def ci() -> None:
    """CI workflows: write one for GitHub or GitLab, summarise JUnit reports."""


@ci.command()
@click.argument("kind", type=click.Choice(["github", "gitlab"]))
@click.option("--force", is_flag=True, help="Replace an existing workflow file.")
@click.option(
    "--branch", default="main", show_default=True, help="The branch that trains and releases."
)
@click.option("--model", default=None, help="The model to release (default: name in keel.yaml).")
@click.option(
    "--as-of",
    default=None,
    help="Check freshness and train as of this time (ISO-8601), for projects on historical data.",
)
@click.option(
    "--rows",
    type=click.IntRange(min=20),
    default=2_000,
    show_default=True,
    help="Rows the smoke test trains on.",
)
@json_option
@pass_cli
def init(
    cli: CliContext,
    kind: str,
    force: bool,
    branch: str,
    model: str | None,
    as_of: str | None,
    rows: int,
    as_json: bool,
) -> int:
    """Write the CI workflow: .github/workflows/keel.yml or .gitlab-ci.yml.

    Every change: the data contract check and the smoke test, as JUnit reports. Pushes to
    --branch: train, test the new version's inference contract, request its promotion to
    production. Refuses to replace an existing file without --force (exit 4)."""
    moment = parse_time(as_of, "--as-of")
    written = cli.project().ci_workflow(
        kind,  # type: ignore[arg-type]  # click.Choice checked the kind
        force=force,
        branch=branch,
        model=model,
        as_of=moment,
        rows=rows,
    )
    path, options = written.path, written
    secrets = "repository secrets" if kind == "github" else "CI/CD variables"
    payload = {"ok": True, **written.to_dict()}
    emit(
        as_json,
        payload,
        f"wrote {path}\n"
        f"checks on every change; on {options.branch}: train, contract-test and promote "
        f"{options.model}@latest to production\n"
        f"next: set KEEL_DB_URL and KEEL_ARTIFACTS as {secrets}, commit the file",
    )
    return EXIT_OK


@ci.command()
@click.argument("reports", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_option
def summary(reports: tuple[Path, ...], as_json: bool) -> int:
    """Summarise JUnit reports as Markdown, e.g. for $GITHUB_STEP_SUMMARY.

    REPORTS are files, or folders of *.xml. Exits 0 whatever the reports say: the steps that
    wrote them failed the job already."""
    from keel.verbs import ci_summary

    summed = ci_summary(None, reports)
    emit(as_json, {"ok": True, **summed.to_dict()}, summed.to_markdown)
    return EXIT_OK


@click.command(name="smoke-test")
@click.option(
    "--rows",
    type=click.IntRange(min=20),
    default=2_000,
    show_default=True,
    help="Rows sampled from the data source to train on.",
)
@_junit_option
@json_option
@pass_cli
def smoke_test(cli: CliContext, rows: int, junit: Path | None, as_json: bool) -> int:
    """Train the pipeline on a sample in a throwaway store, checking each step.

    Nothing is recorded in the project's stores. Exits 1 if any step fails."""
    project = cli.project()
    result = project.smoke_test(rows=rows, junit=junit)
    document = result.to_dict()
    failed = result.suite.failures
    verdict = (
        f"smoke test passed: {len(result.suite.cases)} checks on {result.rows:,} rows"
        if result.ok
        else f"smoke test FAILED: {failed} of {len(result.suite.cases)} checks"
    )
    emit(
        as_json,
        document,
        lambda: _cases_text(f"smoke test of {project.spec.name}", document["steps"], verdict),
    )
    return EXIT_OK if result.ok else EXIT_CHECK_FAILED


@click.command(name="contract-test")
@click.argument("ref", metavar="MODEL@VERSION")
@click.option(
    "--url",
    default=None,
    help="Test the model served here (keel serve) instead of loading it in this process.",
)
@click.option(
    "--rows",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Real rows (from the version's holdout) to send.",
)
@_junit_option
@json_option
@pass_cli
def contract_test(
    cli: CliContext, ref: str, url: str | None, rows: int, junit: Path | None, as_json: bool
) -> int:
    """Test a version's inference contract: real rows answered in shape, type and range,
    bad requests refused naming the field. Exits 1 if any check fails."""
    if url is not None and not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"expected an http(s) URL, got {url!r}", param_hint="--url")
    result = cli.project().contract_test(ref, url=url, rows=rows, junit=junit)
    document = result.to_dict()
    cases = result.suite.cases
    verdict = (
        f"inference contract test passed: {len(cases)} checks"
        if result.ok
        else f"inference contract test FAILED: {result.suite.failures} of {len(cases)} checks"
    )
    emit(
        as_json,
        document,
        lambda: _cases_text(
            f"inference contract of {result.ref} ({result.target}, {result.rows} rows)",
            document["checks"],
            verdict,
        ),
    )
    return EXIT_OK if result.ok else EXIT_CHECK_FAILED
