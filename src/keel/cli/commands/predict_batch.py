"""`keel predict-batch INPUT OUTPUT --model MODEL@ALIAS`: score a file, log every row."""

from __future__ import annotations

from pathlib import Path

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.output import emit, json_option

__all__ = ["predict_batch"]


@click.command(name="predict-batch")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(path_type=Path))
@click.option(
    "--model",
    "ref",
    required=True,
    metavar="MODEL@ALIAS",
    help="The version to score with: MODEL@ALIAS (e.g. flights-delay@production) or MODEL@N.",
)
@json_option
@pass_cli
def predict_batch(
    cli: CliContext, input_path: Path, output_path: Path, ref: str, as_json: bool
) -> int:
    """Score every row of INPUT (CSV, CSV.gz or Parquet) and write OUTPUT.

    Rows are checked against the version's inference contract first; a bad file is refused
    naming the first bad rows of each field, and nothing is written. OUTPUT (Parquet, or CSV
    by its name) holds prediction_id, the outputs and the input columns. Every row is logged
    with slot `batch`, durably, before OUTPUT appears: `keel explain ID` explains any of them.
    """
    from keel.domain.model import parse_model_ref

    parse_model_ref(ref)  # a malformed reference fails before opening anything
    result = cli.project().predict_batch(input_path, output_path, ref)

    def text() -> str:
        logged = "logged" if result.logged else "not logged (serving.log.enabled is false)"
        return (
            f"scored {result.rows:,} rows with {result.model}@{result.version} "
            f"({result.requested}) in {result.seconds:.2f} s -> {result.output}\n"
            f"prediction ids {result.first_id} .. {result.last_id}, {logged}"
        )

    emit(as_json, result.to_dict(), text)
    return 0
