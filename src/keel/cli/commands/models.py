"""`keel models list|show|sign`: registered models, their versions and aliases; signing a
version registered before keel signed packages."""

from __future__ import annotations

import json
from datetime import datetime

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.output import emit, json_option
from keel.domain.model import ModelVersion, parse_model_ref

__all__ = ["models"]


@click.group()
def models() -> None:
    """List registered models and show their versions, metrics and aliases."""


@models.command()
@click.argument("ref", metavar="MODEL@REF")
@json_option
@pass_cli
def sign(cli: CliContext, ref: str, as_json: bool) -> int:
    """Sign a version with the project's signing key, so servers load it.

    For versions registered before keel signed packages (servers refuse them unsigned),
    after reviewing what the package holds. Needs the private key (KEEL_KEYS); recorded in
    the audit log as `model.signed`. A version whose signature verifies is left as it is.
    """
    if parse_model_ref(ref).kind == "model":
        raise click.UsageError(f"name a version: {ref}@VERSION (or {ref}@ALIAS)")
    signed = cli.project().sign_model(ref)
    version, already = signed.version, not signed.signed

    def text() -> str:
        key = version.signature.get("key_id") if version.signature else "-"
        if already:
            return f"{version.ref} is already signed (key {key}); nothing changed"
        return f"signed {version.ref} (package {version.package.short}) with key {key}"

    emit(as_json, {"ok": True, **signed.to_dict()}, text)
    return 0


@models.command(name="list")
@json_option
@pass_cli
def list_(cli: CliContext, as_json: bool) -> int:
    """List models by name, each with its newest version (and whether it is usable) and its
    aliases."""
    listed = cli.project().models()
    found = listed.models

    def text() -> str:
        if not found:
            return "no models yet: run `keel train` to register one"
        lines = [f"{'MODEL':<24}  {'LATEST':>6}  {'VERSIONS':>8}  ALIASES"]
        for model in found:
            aliases = _aliases_text(model["aliases"]) or "-"
            lines.append(
                f"{model['name']:<24}  {model['latest_version']:>6}  {model['versions']:>8}  "
                f"{aliases}"
            )
            if model["latest_status"] != "usable":
                lines.append(f"{'':<24}  ^ v{model['latest_version']} {model['latest_status']}")
        return "\n".join(lines)

    emit(as_json, {"ok": True, **listed.to_dict()}, text)
    return 0


@models.command()
@click.argument("ref", metavar="MODEL[@REF]")
@json_option
@pass_cli
def show(cli: CliContext, ref: str, as_json: bool) -> int:
    """Show a model's versions and aliases, or one version in full.

    MODEL lists every version with its run, metrics and aliases. MODEL@VERSION,
    MODEL@ALIAS or MODEL@latest shows that version, with its inference contract.
    """
    parsed = parse_model_ref(ref)  # a malformed reference fails before opening anything
    detail = cli.project().model(ref)
    if detail.registered is not None and detail.version is not None:
        version, document = detail.registered, detail.version
        emit(
            as_json,
            {"ok": True, **detail.to_dict()},
            lambda: (
                _version_text(version, document["aliases"]) + f"\nstatus      {document['status']}"
            ),
        )
        return 0
    model = detail.model
    assert model is not None  # a model's name, not a version: its document

    def text() -> str:
        lines = [f"model     {parsed.model}", f"aliases   {_aliases_text(model['aliases']) or '-'}"]
        lines.append(
            f"{'VERSION':>7}  {'RUN':<32}  {'REGISTERED (UTC)':<16}  {'BY':<12}  "
            f"{'ALIASES':<20}  METRICS"
        )
        for v in model["versions"]:
            created = datetime.fromisoformat(v["created_at"])
            lines.append(
                f"{v['version']:>7}  {v['run_id']:<32}  {created:%Y-%m-%d %H:%M}  "
                f"{v['created_by']:<12}  {', '.join(v['aliases']) or '-':<20}  "
                f"{_metrics_text(v['metrics']) or '-'}"
            )
            if v["status"] != "usable":
                # Never released, never served: say why under the version's line.
                lines.append(f"{'':>7}  ^ {v['status']}")
        return "\n".join(lines)

    emit(as_json, {"ok": True, **detail.to_dict()}, text)
    return 0


def _aliases_text(aliases: dict[str, int]) -> str:
    return ", ".join(f"{name} -> {version}" for name, version in aliases.items())


def _metrics_text(metrics: dict[str, float]) -> str:
    return " ".join(f"{key}={value:.4g}" for key, value in metrics.items())


def _version_text(version: ModelVersion, aliases: list[str]) -> str:
    lines = [
        f"model       {version.ref}",
        f"aliases     {', '.join(aliases) or '-'}",
        f"run         {version.run_id}",
        f"package     {version.package}",
        f"flavor      {version.flavor}",
        f"registered  {version.created_at:%Y-%m-%d %H:%M:%S} UTC by {version.created_by}",
        "metrics" + ("" if version.metrics else "     -"),
        *(f"  {key} = {value:g}" for key, value in version.metrics.items()),
    ]
    contract = version.inference_contract
    fields = contract.get("inputs")
    if isinstance(fields, list) and all(isinstance(f, dict) and "name" in f for f in fields):
        lines.append("inputs" + ("" if fields else "      -"))
        lines += [
            f"  {f['name']:<24} {f.get('type', '?')}" + (" (nullable)" if f.get("nullable") else "")
            for f in fields
        ]
        outputs = contract.get("outputs")
        if isinstance(outputs, list) and outputs:
            lines.append("outputs")
            lines += [
                f"  {f.get('name', '?'):<24} {f.get('type', '?')}"
                for f in outputs
                if isinstance(f, dict)
            ]
    else:
        lines.append(f"inference contract  {json.dumps(contract, sort_keys=True)}")
    return "\n".join(lines)
