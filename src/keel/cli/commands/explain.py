"""`keel explain PREDICTION_ID`: the data, code, environment and release behind a prediction."""

from __future__ import annotations

from typing import Any

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.output import emit, json_option

__all__ = ["explain"]


def _short(value: Any) -> str:
    text = str(value or "-")
    return text.split(":", 1)[-1][:12] if text.startswith("blake3:") else text


def _values(values: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in values.items()) or "-"


def _release_lines(record: dict[str, Any], indent: str = "") -> list[str]:
    event = record["event"]
    was = "" if event["from"] is None else f" (was v{event['from']})"
    lines = [
        f"{indent}{record['how']:<12} v{record['version']} -> {record['alias']}{was}  "
        f"at {event['at']} by {event['actor']}  (audit event {event['seq']})"
    ]
    if event["reason"]:
        lines.append(f"{indent}  reason     {event['reason']}")
    if record["request"]:
        lines.append(
            f"{indent}  requested  by {record['requested_by']} at {record['requested_at']}  "
            f"(request {record['request']})"
        )
        for approval in record["approvals"]:
            comment = f": {approval['comment']}" if approval["comment"] else ""
            verb = "approved" if approval["decision"] == "approve" else "rejected"
            lines.append(
                f"{indent}  {verb:<10} by {approval['actor']} at {approval['at']}{comment}"
            )
    elif record["how"] == "promoted":
        lines.append(f"{indent}  approvals  none required (promoted by {event['actor']})")
    gates = record["gates"]
    if gates:
        for gate in gates:
            verdict = "PASS" if gate["passed"] else "FAIL"
            lines.append(f"{indent}  gate       {verdict}  {gate['gate']}: {gate['reason']}")
    elif record["evaluation"] is not None and gates is not None:
        lines.append(f"{indent}  gates      none guard {record['alias']}")
    original = record.get("original")
    if original:
        lines.append(f"{indent}  first put there by:")
        lines.extend(_release_lines(original, indent + "    "))
    return lines


def _render(chain: dict[str, Any]) -> str:
    from keel.cli.commands.lineage import _render as render_lineage

    prediction = chain["prediction"]
    release = chain["release"]
    lines = [
        f"prediction   {prediction['id']}  at {prediction['at']}  "
        f"{prediction['ref']}  slot {prediction['slot']}  "
        f"({prediction['latency_ms']:.1f} ms)",
        f"  inputs     {_values(prediction['inputs'])}",
        f"  outputs    {_values(prediction['outputs'])}",
    ]
    labels = chain.get("labels") or []
    if labels:
        current = labels[-1]
        earlier = len(labels) - 1
        replaced = (
            f"; replaced {earlier} earlier label(s): keel feedback --history {prediction['id']}"
            if earlier
            else ""
        )
        lines.append(
            f"  label      {current['label']!r} (recorded by {current['received_by']} at "
            f"{current['received_at']}{replaced})"
        )
    if prediction["client_id"]:
        lines.append(f"  client id  {prediction['client_id']}")
    if prediction["shadow_of"]:
        lines.append(f"  shadow of  {prediction['shadow_of']}")
    lines.append(render_lineage(chain))
    environment = chain["environment"]
    if environment and environment.get("key_packages"):
        packages = ", ".join(f"{k} {v}" for k, v in environment["key_packages"].items())
        lines.append(f"  packages   {packages}")
    held = ", ".join(release["aliases_held"]) or "no alias"
    if release["alias"] is not None:
        holder = release["holder_at_prediction"]
        lines.append(
            f"release      served from {release['alias']} (held by "
            f"{'nothing' if holder is None else f'v{holder}'} at the prediction's time; "
            f"v{prediction['version']} held: {held})"
        )
    else:
        lines.append(f"release      slot {release['slot']}; v{prediction['version']} held: {held}")
    for record in release["releases"]:
        lines.extend(_release_lines(record, "  "))
    if not release["releases"]:
        lines.append("  no release of this version is recorded")
    return "\n".join(lines)


@click.command()
@click.argument("prediction_id", metavar="PREDICTION_ID")
@json_option
@pass_cli
def explain(cli: CliContext, prediction_id: str, as_json: bool) -> int:
    """The whole lineage of one prediction: inputs and outputs, model version, run, dataset,
    code, git commit, environment, and the release and approvals that put the version in
    the alias that answered."""
    from keel.verbs.explain import check_prediction_id

    check_prediction_id(prediction_id)  # a malformed id fails before opening anything
    chain = cli.project().explain(prediction_id).to_dict()
    emit(as_json, {"ok": True, **chain}, lambda: _render(chain))
    return 0
