"""`keel skew --model M`: training-serving skew of a window of logged predictions."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.errors import EXIT_CHECK_FAILED, EXIT_OK
from keel.cli.output import duration_callback, emit, json_option, parse_time
from keel.domain.digest import Digest
from keel.errors import ConfigError

if TYPE_CHECKING:
    from keel.verbs import RowSkewReport, SkewReport

__all__ = ["skew"]


def _name_flags(exc: ConfigError, model: str, version: int | None) -> None:
    """The verb's conflicts said in the command's flags."""
    fields = [field for field, _rule in exc.problems]
    if fields == ["since"]:
        raise ConfigError(
            "--since and --start both say where the window starts: pass one of them",
            problems=[("--since", "conflicts with --start")],
        ) from None
    if fields == ["version"]:
        raise ConfigError(
            f"--model {model} names a version and --version {version} another: pass one",
            problems=[("--version", "conflicts with --model NAME@VERSION")],
        ) from None


def _short(digest: str) -> str:
    return Digest.parse(digest).short


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.2%}"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "null" if value is None else str(value)


def _rows_text(rows: RowSkewReport, max_mismatch: float) -> list[str]:
    source = "the training data" if rows.source_is_training else "not the training data"
    lines = [
        f"row-level skew: {rows.compared:,} of {rows.predictions:,} requests compared with "
        f"their offline row in dataset {_short(rows.source)} ({source}), "
        f"entity key {', '.join(rows.entity_key)}",
        f"  {rows.without_key:,} without an entity key, {rows.without_match:,} without an "
        f"offline row, {rows.ambiguous:,} with a key several offline rows share",
    ]
    if rows.features:
        width = max(len("FEATURE"), *(len(f.feature) for f in rows.features))
        lines.append(
            f"  {'FEATURE':<{width}}  {'MISMATCHES':>10}  {'RATE':>7}  {'ONLINE NULL':>11}  "
            "EXAMPLE (online vs offline)"
        )
        above = {f.feature for f in rows.above(max_mismatch)}
        for feature in rows.features:
            example = ""
            if feature.examples:
                first = feature.examples[0]
                key = ", ".join(f"{k}={_value(v)}" for k, v in first.key.items())
                example = f"{_value(first.online)} vs {_value(first.offline)} at {key}"
            flag = " !" if feature.feature in above else "  "
            lines.append(
                f"{flag}{feature.feature:<{width}}  {feature.mismatches:>10,}  "
                f"{_percent(feature.mismatch_rate):>7}  {feature.missing_online:>11,}  {example}"
            )
    return lines


def _distribution_text(report: SkewReport) -> list[str]:
    results = report.distribution
    lines = [
        f"distribution skew: serving features against the training features "
        f"({len(report.drifted)} of {len(results)} drifted)"
    ]
    if not results:
        return lines
    width = max(len("FEATURE"), *(len(r.column) for r in results))
    lines.append(
        f"  {'FEATURE':<{width}}  {'TEST':<14}  {'STATISTIC':>10}  {'P-VALUE':>10}  DRIFTED"
    )
    for result in results:
        p_value = "-" if result.p_value is None else f"{result.p_value:.3g}"
        statistic = f"{result.statistic:.4g}"
        lines.append(
            f"  {result.column:<{width}}  {result.test:<14}  {statistic:>10}  {p_value:>10}  "
            f"{'yes' if result.drifted else 'no'}"
        )
    return lines


def _render(report: SkewReport, max_mismatch: float) -> str:
    rows = report.row
    lines = [
        f"training-serving skew of {rows.ref}: {rows.predictions:,} predictions from "
        f"{rows.start:%Y-%m-%d %H:%M:%S} to {rows.end:%Y-%m-%d %H:%M:%S} UTC",
        "",
        *_distribution_text(report),
        "",
        *_rows_text(rows, max_mismatch),
        "",
    ]
    above = rows.above(max_mismatch)
    if above:
        names = ", ".join(f"{f.feature} {_percent(f.mismatch_rate)}" for f in above)
        lines.append(
            f"FAIL: {len(above)} feature(s) mismatch in more than {max_mismatch:.2%} of rows: "
            f"{names}"
        )
    else:
        lines.append(f"ok: no feature mismatches in more than {max_mismatch:.2%} of rows")
    return "\n".join(line.rstrip() for line in lines)


@click.command()
@click.option(
    "--model",
    "model",
    required=True,
    metavar="NAME[@VERSION|ALIAS]",
    help="The model whose logged predictions are checked.",
)
@click.option(
    "--version",
    "version",
    type=click.IntRange(min=1),
    default=None,
    help="The version (default: the one that answered most of the window's requests).",
)
@click.option(
    "--since",
    "since",
    callback=duration_callback,
    default=None,
    metavar="DURATION",
    help="The window: the last DURATION (default: monitoring.window).",
)
@click.option(
    "--start",
    "start",
    default=None,
    metavar="TIME",
    help="The window's start (ISO 8601, UTC without a zone).",
)
@click.option(
    "--end", "end", default=None, metavar="TIME", help="The window's end, excluded (default: now)."
)
@click.option(
    "--source",
    "source",
    default=None,
    metavar="DATASET",
    help="The dataset version holding the offline rows (default: the version's "
    "training data), e.g. `latest` when production rows were snapshotted later.",
)
@click.option(
    "--entity-key",
    "entity_key",
    default=None,
    metavar="COL[,COL...]",
    help="The columns that identify a raw row (default: data.entity_key).",
)
@click.option(
    "--max-mismatch",
    "max_mismatch",
    type=click.FloatRange(0, 1),
    default=0.01,
    show_default=True,
    help="Exit 1 when a feature mismatches in a larger share of the rows.",
)
@click.option(
    "--test",
    "test",
    default=None,
    metavar="NAME",
    help="Drift test for every feature: ks, psi, chi2, wasserstein, jensenshannon "
    "(default: monitoring.drift.test, else each feature's default).",
)
@click.option(
    "--threshold",
    "threshold",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="The --test's drift threshold (default: the test's own).",
)
@click.option(
    "--tolerance",
    "tolerance",
    type=click.FloatRange(min=0),
    default=1e-9,
    show_default=True,
    help="Numbers match when |online - offline| <= TOLERANCE * (1 + |offline|).",
)
@click.option(
    "--limit",
    "limit",
    type=click.IntRange(min=1),
    default=None,
    help="Check only the newest LIMIT predictions of the window.",
)
@json_option
@pass_cli
def skew(
    cli: CliContext,
    model: str,
    version: int | None,
    since: timedelta | None,
    start: str | None,
    end: str | None,
    source: str | None,
    entity_key: str | None,
    max_mismatch: float,
    test: str | None,
    threshold: float | None,
    tolerance: float,
    limit: int | None,
    as_json: bool,
) -> int:
    """Training-serving skew: the features serving computed from logged requests against
    the training features (distribution skew), and each logged request that carries the
    entity key against its offline row, both through the version's packaged feature code
    (row-level skew: the mismatch rate per feature). Exits 1 when a feature's mismatch rate
    is above --max-mismatch."""
    project = cli.project()
    key = None
    if entity_key is not None:
        key = [part.strip() for part in entity_key.split(",") if part.strip()]
    window_end = parse_time(end, "--end")
    window_start = parse_time(start, "--start")
    try:
        check = project.skew(
            model,
            version=version,
            since=since,
            start=window_start,
            end=window_end,
            source=source,
            entity_key=key,
            max_mismatch=max_mismatch,
            test=test,
            threshold=threshold,
            tolerance=tolerance,
            limit=limit,
        )
    except ConfigError as exc:
        _name_flags(exc, model, version)
        raise
    emit(
        as_json,
        {"ok": check.ok, **check.to_dict()},
        lambda: _render(check.report, max_mismatch),
    )
    return EXIT_OK if check.ok else EXIT_CHECK_FAILED
