"""`keel artifacts`: put, get, list, verify and garbage-collect stored objects."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.errors import EXIT_CHECK_FAILED
from keel.cli.output import emit, json_option
from keel.domain.digest import Digest
from keel.domain.duration import parse_duration

__all__ = ["artifacts"]


@contextmanager
def _progress(total: int, label: str, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for interactive use; nothing when piped or with --json."""
    if not enabled or not sys.stderr.isatty() or total < 64 * 1024 * 1024:
        yield None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar.update


def _digest(value: str) -> Digest:
    try:
        return Digest.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="DIGEST") from None


@click.group()
def artifacts() -> None:
    """Content-addressed objects: datasets, models, reports, logs."""


@artifacts.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--holder", help="Keep the object alive for this holder (e.g. 'release:v3').")
@click.option("--media-type", default="application/octet-stream", show_default=True)
@json_option
@pass_cli
def put(cli: CliContext, file: Path, holder: str | None, media_type: str, as_json: bool) -> int:
    """Store FILE and print its digest."""
    project = cli.project()
    with _progress(file.stat().st_size, f"put {file.name}", not as_json) as progress:
        record = project.put_artifact(file, media_type=media_type, holder=holder, progress=progress)
    emit(
        as_json,
        {"ok": True, "digest": record.digest, "size": record.size, "holder": holder},
        str(record.digest),
    )
    return 0


@artifacts.command()
@click.argument("digest")
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@pass_cli
def get(cli: CliContext, digest: str, dest: Path, as_json: bool) -> int:
    """Write the object DIGEST to DEST, verified against its hash."""
    project = cli.project()
    wanted = _digest(digest)
    record = project.metadata.artifacts.get(wanted)
    with _progress(record.size, f"get {wanted.short}", not as_json) as progress:
        project.get_artifact(wanted, dest, progress=progress)
    emit(
        as_json,
        {"ok": True, "digest": wanted, "dest": dest, "size": record.size},
        f"{wanted} -> {dest} ({record.size} bytes, verified)",
    )
    return 0


@artifacts.command(name="list")
@click.option("--limit", type=click.IntRange(min=1), default=None)
@json_option
@pass_cli
def list_(cli: CliContext, limit: int | None, as_json: bool) -> int:
    """List recorded objects, oldest first."""
    listed = cli.project().list_artifacts(limit=limit)
    rows = listed.artifacts
    emit(
        as_json,
        {"ok": True, **listed.to_dict()},
        lambda: (
            "\n".join(
                f"{row['digest']}  {row['size']:>12}  {row['created_by']}  "
                f"{','.join(row['holders']) or '-'}"
                for row in rows
            )
            or "no artifacts"
        ),
    )
    return 0


@artifacts.command()
@json_option
@pass_cli
def verify(cli: CliContext, as_json: bool) -> int:
    """Re-hash every recorded object. Exits 1 if any is corrupt or missing."""
    report = cli.project().verify_artifacts()
    emit(
        as_json,
        {
            "ok": report.ok,
            "checked": report.checked,
            "corrupt": report.corrupt,
            "missing": report.missing,
        },
        lambda: "\n".join(
            [f"checked {report.checked} object{'' if report.checked == 1 else 's'}"]
            + [f"CORRUPT {digest}" for digest in report.corrupt]
            + [f"MISSING {digest}" for digest in report.missing]
        ),
    )
    return 0 if report.ok else EXIT_CHECK_FAILED


@artifacts.command()
@click.option(
    "--grace",
    default="1h",
    show_default=True,
    help="Keep unreferenced objects younger than this (protects puts in flight).",
)
@click.option("--dry-run", is_flag=True, help="Show what would be deleted; delete nothing.")
@json_option
@pass_cli
def gc(cli: CliContext, grace: str, dry_run: bool, as_json: bool) -> int:
    """Delete objects that nothing references."""
    try:
        window = parse_duration(grace)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--grace") from None
    report = cli.project().gc(grace=window, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    emit(
        as_json,
        {
            "ok": True,
            "dry_run": dry_run,
            "deleted": report.deleted,
            "freed_bytes": report.freed_bytes,
            "kept": report.kept,
            "temp_files_removed": report.temp_files_removed,
        },
        f"{verb} {len(report.deleted)} objects ({report.freed_bytes} bytes); "
        f"{report.kept} referenced kept",
    )
    return 0
