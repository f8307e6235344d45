"""`keel data snapshot|list|show|diff`: immutable, content-addressed dataset versions."""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.engine import asked_engine, engine_options
from keel.cli.output import emit, json_option
from keel.domain.dataset import DatasetVersion
from keel.domain.times import kind_named

if TYPE_CHECKING:
    # Only for annotations: loading pyarrow is left to the commands that need it.
    from keel.stats.profile import ColumnProfile, Profile

__all__ = ["data"]


@click.group()
def data() -> None:
    """Snapshot input data into versions, list, show and compare them."""


@data.command()
@click.argument("source", required=False)
@click.option(
    "--manifest/--copy",
    "manifest",
    default=None,
    help="Record the files of a lake table where they are (Parquet folder or glob, "
    "s3://bucket/prefix, Delta table) instead of a copy. Default: data.snapshot in keel.yaml.",
)
@click.option(
    "--delta-version",
    type=click.IntRange(min=0),
    default=None,
    help="With --manifest: this version of a Delta table (default: the newest).",
)
@engine_options("with --manifest: the profile computed by Spark's tasks from the manifest's files")
@json_option
@pass_cli
def snapshot(
    cli: CliContext,
    source: str | None,
    manifest: bool | None,
    delta_version: int | None,
    engine: str | None,
    spark_master: str | None,
    as_json: bool,
) -> int:
    """Snapshot data into an immutable dataset version.

    SOURCE is a CSV or Parquet file, a glob or a folder; without it, data.source in keel.yaml
    (a path or a SQL query). Unchanged data gives the version recorded before, without
    reading the files again. With --manifest, SOURCE may also be s3://bucket/prefix or a
    Delta table, and nothing is copied.

    With --engine spark (or keel.yaml's engine.kind: spark), a manifest version's files are
    read and profiled by Spark's tasks, the parts merged here: the same version, schema,
    counts and time range as in-process. A copy runs in this process (exit 2 with --engine
    spark). A Spark job that fails exits 10 and records nothing.
    """
    project = cli.project()
    chosen = asked_engine(project.spec.engine, engine, spark_master)
    result = project.snapshot(source, manifest=manifest, delta_version=delta_version, engine=chosen)
    version = result.version
    listed = result.manifest

    def text() -> str:
        if result.reused:
            head = (
                f"unchanged: dataset {version.short} "
                f"(recorded {_when(version.created_at)} by {version.created_by})"
            )
        else:
            head = f"recorded dataset {version.short}"
        detail = f"{_count(version.rows)} rows x {len(version.columns)} columns"
        if version.time_range is not None:
            detail += f", {_span(version)}"
        read = result.files_read
        lines = [head, f"  {detail}", f"  {_count(read)} file{'' if read == 1 else 's'} read"]
        if listed is not None:
            lines.append(f"  manifest of {listed.location}: {_manifest_line(listed.summary())}")
        lines += [f"  left out {column.describe()}" for column in version.left_out]
        return "\n".join(lines)

    emit(
        as_json,
        {
            "ok": True,
            "reused": result.reused,
            "files_read": result.files_read,
            "manifest": None if listed is None else listed.summary(),
            "version": version.to_dict(),
            "notices": [f"left out {column.describe()}" for column in version.left_out],
        },
        text,
    )
    return 0


@data.command(name="list")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most N.")
@json_option
@pass_cli
def list_(cli: CliContext, limit: int | None, as_json: bool) -> int:
    """List dataset versions, newest first."""
    listed = cli.project().datasets(limit=limit)
    versions = listed.versions

    def text() -> str:
        if not versions:
            return "no dataset versions yet: run `keel data snapshot`"
        lines = [
            f"{'ID':<12}  {'CREATED':<16}  {'ROWS':>12}  {'COLS':>4}  {'TIME RANGE':<35}  SOURCE"
        ]
        for v in versions:
            span = _span(v, column=False)
            lines.append(
                f"{v.short:<12}  {_when(v.created_at):<16}  {_count(v.rows):>12}  "
                f"{len(v.columns):>4}  {span:<35}  {v.source}"
            )
        return "\n".join(lines)

    emit(as_json, {"ok": True, **listed.to_dict()}, text)
    return 0


@data.command()
@click.argument("ref")
@json_option
@pass_cli
def show(cli: CliContext, ref: str, as_json: bool) -> int:
    """Show a dataset version and its statistics profile.

    REF is `latest`, a version id, or at least 6 leading hex characters of one.
    """
    detail = cli.project().dataset(ref)
    version, profile, parquet_size = detail.version, detail.profile, detail.parquet_size

    def text() -> str:
        lines = [
            f"dataset   {version.short}  ({version.id})",
            f"source    {version.source}  ({version.format})",
        ]
        if version.query is not None:
            lines.append(f"query     {version.query}")
        lines += [
            f"created   {_when(version.created_at)} UTC by {version.created_by}",
            f"rows      {_count(version.rows)}",
            f"time      {_span(version)}",
        ]
        manifest = detail.manifest
        if manifest is not None:
            # The files are the data, where they are: each with the identity it is read by.
            lines.append(f"manifest  {version.data.short}  ({_manifest_line(manifest.summary())})")
            lines += [f"  {f.path}  {_count(f.size)} bytes  {f.identity}" for f in manifest.files]
        else:
            lines.append(f"parquet   {version.data.short}  ({_count(parquet_size)} bytes)")
            lines.append(f"files     {len(version.files)}")
            lines += [
                f"  {f.path}  {_count(f.size)} bytes  {f.digest.short}" for f in version.files
            ]
        lines.append(f"columns   {len(version.columns)}")
        width = max((len(name) for name, _ in version.columns), default=4)
        types = max((len(kind) for _, kind in version.columns), default=4)
        lines.append(f"  {'NAME':<{width}}  {'TYPE':<{types}}  {'NULLS':>9}  {'NULL%':>6}  SUMMARY")
        for name, kind in version.columns:
            column = _profiled(profile, name)
            nulls = _count(column.nulls) if column else "?"
            rate = f"{column.null_rate:.1%}" if column else "?"
            lines.append(
                f"  {name:<{width}}  {kind:<{types}}  {nulls:>9}  {rate:>6}  {_summary(column)}"
            )
        if version.left_out:
            lines.append("left out")
            lines += [f"  {column.describe()}" for column in version.left_out]
        return "\n".join(lines)

    emit(as_json, {"ok": True, **detail.to_dict()}, text)
    return 0


@data.command()
@click.argument("old")
@click.argument("new")
@json_option
@pass_cli
def diff(cli: CliContext, old: str, new: str, as_json: bool) -> int:
    """Compare two dataset versions: rows, time range, schema, column statistics.

    OLD and NEW are refs as for `keel data show`.
    """
    comparison = cli.project().dataset_diff(old, new)
    result = comparison.diff

    def text() -> str:
        a, b = result.old, result.new
        lines = [f"dataset   {a.short} -> {b.short}"]
        if result.identical:
            lines.append("identical: the same content")
            return "\n".join(lines)
        delta = result.rows_delta
        lines.append(f"rows      {_count(a.rows)} -> {_count(b.rows)} ({delta:+,})")
        spans = [_span(v) for v in (a, b)]
        if spans[0] != spans[1]:
            lines.append(f"time      {spans[0]}\n       -> {spans[1]}")
        schema = [f"+ {name} ({kind})" for name, kind in result.added]
        schema += [f"- {name} ({kind})" for name, kind in result.removed]
        schema += [f"~ {c.name}: {c.old} -> {c.new}" for c in result.retyped]
        lines.append("schema    " + ("\n          ".join(schema) if schema else "unchanged"))
        if result.columns:
            lines.append("columns   statistics that moved")
            width = max(len(change.name) for change in result.columns)
            for change in result.columns:
                parts = []
                if change.null_rate[0] != change.null_rate[1]:
                    parts.append(f"null {change.null_rate[0]:.1%} -> {change.null_rate[1]:.1%}")
                if change.mean[0] != change.mean[1]:
                    parts.append(f"mean {_number(change.mean[0])} -> {_number(change.mean[1])}")
                if change.distinct[0] != change.distinct[1]:
                    parts.append(
                        f"distinct {_count(change.distinct[0])} -> {_count(change.distinct[1])}"
                    )
                lines.append(f"  {change.name:<{width}}  " + "   ".join(parts))
        return "\n".join(lines)

    emit(as_json, {"ok": True, **comparison.to_dict()}, text)
    return 0


# --- rendering -------------------------------------------------------------------------------


def _manifest_line(summary: dict[str, Any]) -> str:
    files = summary["files"]
    text = f"{files:,} file{'' if files == 1 else 's'}, {summary['bytes']:,} bytes"
    if summary["delta_version"] is not None:
        text += f", Delta table version {summary['delta_version']}"
    return text


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    # Statistics, not counts: no thousands separators (a year 2013 is not "2,013").
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M}"


def _span(version: DatasetVersion, *, column: bool = True) -> str:
    """The version's time range as its column holds it: a date column's as dates."""
    time_range = version.time_range
    if time_range is None:
        return "-"
    kind = kind_named(dict(version.columns).get(time_range.column, ""))
    layout = "%Y-%m-%d" if kind == "date" else "%Y-%m-%d %H:%M:%S"
    text = f"{time_range.start:{layout}} .. {time_range.end:{layout}}"
    return f"{text} ({time_range.column})" if column else text


def _profiled(profile: Profile, name: str) -> ColumnProfile | None:
    try:
        return profile.column(name)
    except KeyError:
        return None


def _summary(column: ColumnProfile | None) -> str:
    if column is None:
        return ""
    if column.numeric is not None:
        n = column.numeric
        return (
            f"min {_number(n.min)}  p50 {_number(n.quantiles.get('p50'))}  "
            f"max {_number(n.max)}  mean {_number(n.mean)}"
        )
    if column.categorical is not None:
        c = column.categorical
        top = ", ".join(f"{value} ({count:,})" for value, count in c.top[:3])
        return f"{c.distinct:,} distinct" + (f"; top {top}" if top else "")
    if column.boolean is not None:
        return f"true {column.boolean.true:,}  false {column.boolean.false:,}"
    if column.temporal is not None:
        return f"{column.temporal.min} .. {column.temporal.max}"
    return ""
