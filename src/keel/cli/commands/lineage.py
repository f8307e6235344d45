"""`keel lineage MODEL@VERSION`: the data, code and environment behind a model version."""

from __future__ import annotations

from typing import Any

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.output import emit, json_option
from keel.domain.model import parse_model_ref
from keel.domain.times import kind_named

__all__ = ["lineage"]


def _short(value: Any) -> str:
    text = str(value or "-")
    return text.split(":", 1)[-1][:12] if text.startswith("blake3:") else text


def _span(dataset: dict[str, Any]) -> str:
    """The dataset's time range as its column holds it: dates as dates."""
    time_range = dataset.get("time_range")
    if not time_range:
        return ""
    start, end = time_range["start"], time_range["end"]
    types = {c["name"]: c["type"] for c in dataset.get("columns", [])}
    if kind_named(types.get(time_range["column"], "")) == "date":
        start, end = start[:10], end[:10]
    return f"{start} .. {end}"


def _render(chain: dict[str, Any]) -> str:
    model, run = chain["model"], chain["run"]
    aliases = ", ".join(model["aliases"]) or "no alias"
    lineage = run["lineage"]
    lines = [
        f"model        {model['model']}@{model['version']}  ({aliases})  "
        f"package {_short(model['package'])}  flavor {model['flavor']}",
        "  metrics    "
        + "  ".join(f"{key} {value:.4f}" for key, value in sorted(model["metrics"].items())),
        f"run          {run['id']}  {run['status']}  by {run['user']}  started {run['started_at']}",
        "  params     " + (", ".join(f"{k}={v}" for k, v in run["params"].items()) or "-"),
        f"  seed       {lineage['seed']}",
        "  steps      "
        + ", ".join(f"{s['step']} {s['outcome'].replace('_', ' ')}" for s in run["steps"]),
    ]
    dataset = chain["dataset"]
    if dataset is None:
        lines.append("dataset      - (the run recorded none)")
    elif dataset.get("missing"):
        lines.append(f"dataset      {_short(dataset['id'])}  MISSING from the metadata store")
    else:
        lines.append(
            f"dataset      {_short(dataset['id'])}  {dataset['rows']:,} rows  "
            f"{_span(dataset)}".rstrip()
        )
        lines.append(f"  source     {dataset['source']}")
        for entry in dataset.get("files", [])[:5]:
            lines.append(f"  file       {entry['path']}  {_short(entry['digest'])}")
    code = chain["code"]
    features = code.get("features") or {}
    lines.append(
        f"code         features {features.get('entry_point', '-')}  "
        f"{_short(lineage['feature_code_hash'])}  "
        f"({len(features.get('files', []))} file(s) packaged with the model)"
    )
    lines.append(f"             training {_short(lineage['training_code_hash'])}")
    if lineage["git_commit"]:
        dirty = (
            " (uncommitted changes " + _short(lineage["git_diff_hash"]) + ")"
            if lineage["git_dirty"]
            else ""
        )
        lines.append(f"git          {lineage['git_commit']}{dirty}")
    else:
        lines.append("git          - (not a git repository)")
    environment = chain["environment"]
    if environment:
        lines.append(
            f"environment  {_short(environment['digest'])}  {environment['python']}  "
            f"{environment['packages']} packages  {environment['platform']}"
        )
    else:
        lines.append("environment  - (not recorded)")
    return "\n".join(lines)


@click.command()
@click.argument("ref", metavar="MODEL@VERSION")
@json_option
@pass_cli
def lineage(cli: CliContext, ref: str, as_json: bool) -> int:
    """The whole chain behind a model version: run, dataset, code, git, environment."""
    parse_model_ref(ref)  # a malformed reference fails before opening anything
    chain = cli.project().lineage(ref).to_dict()
    emit(as_json, {"ok": True, **chain}, lambda: _render(chain))
    return 0
