"""`keel deploy render` and `keel env check`: a model version's images and manifests, and
whether the running environment is the one its run recorded."""

from __future__ import annotations

from pathlib import Path

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.errors import EXIT_CHECK_FAILED, EXIT_OK
from keel.cli.output import emit, json_option
from keel.domain.deploy import TARGETS
from keel.domain.model import parse_model_ref

__all__ = ["deploy", "env"]


@click.group()
def deploy() -> None:
    """Container images and Kubernetes manifests for a model version."""


@deploy.command(name="render")
@click.argument("target", type=click.Choice(TARGETS))
@click.option(
    "--model",
    "ref",
    required=True,
    metavar="MODEL@REF",
    help="The version to render for: MODEL@3, MODEL@production, MODEL@latest.",
)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(path_type=Path),
    help="The folder to write (must be new or empty; --force replaces an earlier render's "
    "files, keeping any you added).",
)
@click.option(
    "--image",
    default=None,
    help="The serving image the manifests run (default: MODEL:vVERSION).",
)
@click.option(
    "--replicas",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Replicas (kubernetes, kserve); the autoscaler may grow to 4 times this.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace the files of an earlier render in its folder (files you added are kept).",
)
@json_option
@pass_cli
def render_command(
    cli: CliContext,
    target: str,
    ref: str,
    output: Path,
    image: str | None,
    replicas: int,
    force: bool,
    as_json: bool,
) -> int:
    """Write TARGET's files for a model version into a folder, all or nothing.

    docker: Dockerfile.serve and Dockerfile.train on python:<recorded version>-slim, with
    requirements.lock pinning every package the version's run recorded, and the project
    files they copy (the folder is the build context). kubernetes: Deployment, Service,
    HorizontalPodAutoscaler and PodDisruptionBudget for keel serve. kserve: an
    InferenceService with keel serve as its predictor. The same input gives the same bytes.
    See docs/deploy.md.
    """
    parse_model_ref(ref)  # a malformed reference fails before opening anything
    result = cli.project().deploy_render(
        target,  # type: ignore[arg-type]  # click.Choice holds it to the targets
        ref,
        output,
        image=image,
        replicas=replicas,
        force=force,
    )

    def text() -> str:
        lines = [f"wrote {len(result.files)} files for {result.model} to {result.output}"]
        lines += [f"  {name}" for name in result.files]
        if result.kept:
            lines.append(f"kept {len(result.kept)} files of yours unchanged")
            lines += [f"  {name}" for name in result.kept]
        if result.base_image is not None:
            lines.append(f"base image  {result.base_image}")
        else:
            lines.append(f"image       {result.image}  (replicas {result.replicas})")
        lines += [f"note: {note}" for note in result.notes]
        return "\n".join(lines)

    emit(as_json, {"ok": True, **result.to_dict()}, text)
    return EXIT_OK


@click.group()
def env() -> None:
    """Compare the running environment with a model version's recorded one."""


@env.command(name="check")
@click.argument("ref", metavar="MODEL@VERSION")
@json_option
@pass_cli
def check(cli: CliContext, ref: str, as_json: bool) -> int:
    """List every difference between this environment and the lock MODEL@VERSION's run
    recorded: Python version and implementation, platform, and every package missing,
    added or at another version. Exit 0 when identical, 1 when anything differs."""
    parse_model_ref(ref)
    result = cli.project().env_check(ref)
    recorded = result.recorded

    def text() -> str:
        where = (
            f"{recorded.python_implementation} {recorded.python_version}, "
            f"{recorded.system} {recorded.machine}, {len(recorded.packages)} packages"
        )
        if result.ok:
            return f"{result.model}: this environment is the recorded one ({where})"
        count = len(result.differences)
        lines = [
            f"{result.model}: {count} difference{'s' if count != 1 else ''} from the "
            f"environment run {result.run_id} recorded ({where})",
            *(str(difference) for difference in result.differences),
        ]
        return "\n".join(lines)

    emit(as_json, result.to_dict(), text)
    return EXIT_OK if result.ok else EXIT_CHECK_FAILED
