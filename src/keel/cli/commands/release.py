"""`keel promote`, `approve`, `reject`, `rollback`, `requests` and `audit-log`: the release
workflow on the command line. The acting identity is KEEL_USER (or the OS user). Requests
and failed gates name their owners (keel.yaml's `owners:`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from keel.cli.context import CliContext, pass_cli
from keel.cli.errors import EXIT_CHECK_FAILED, EXIT_OK, EXIT_PENDING
from keel.cli.output import emit, json_option
from keel.domain.audit import AuditEvent
from keel.domain.release import GateResult, ReleaseRequest

if TYPE_CHECKING:
    from keel.verbs import DecisionResult, PromotionResult

__all__ = [
    "approve_command",
    "audit_log",
    "promote_command",
    "reject_command",
    "requests",
    "rollback_command",
]


def _gate_line(gate: GateResult) -> str:
    line = f"  {'PASS' if gate.passed else 'FAIL'}  {gate.gate}: {gate.reason}"
    if not gate.passed and gate.owner:
        line += f"  [{gate.stage} owner: {gate.owner}]"
    return line


def _gate_lines(gates: tuple[GateResult, ...] | list[GateResult]) -> list[str]:
    if not gates:
        return ["  (no gates guard this alias)"]
    return [_gate_line(g) for g in gates]


def _owner(owner: str | None) -> str:
    return owner or "nobody (set owners.release in keel.yaml)"


def _promotion_text(result: PromotionResult) -> str:
    was = "nothing" if result.holder is None else f"v{result.holder}"
    lines = [f"{result.ref} -> {result.alias} (now {was})", "gates:"]
    lines.extend(_gate_lines(result.gates))
    if result.outcome == "promoted":
        lines.append(f"PROMOTED: {result.model}@{result.alias} is v{result.version}")
    elif result.outcome == "pending" and result.request is not None:
        request = result.request
        roles = f" with one of the roles {', '.join(request.roles)}" if request.roles else ""
        lines.append(
            f"PENDING APPROVAL: request {request.id} needs {request.required} approval(s){roles} "
            f"by someone other than {request.requested_by}, before "
            f"{request.expires_at:%Y-%m-%d %H:%M} UTC"
        )
        if result.note:
            lines.append(result.note)
        lines.append(f"release owner: {_owner(request.owner)}")
        lines.append(f"next: `keel approve {request.id}` (as another user)")
    else:
        failed = [g for g in result.gates if not g.passed]
        lines.append(f"REFUSED: {len(failed)} gate(s) failed; {result.alias} stays at {was}")
        lines.append(f"release owner: {_owner(result.owner)}")
        if result.notify:
            lines.append(f"notified: {', '.join(result.notify)} (in the gates.evaluated event)")
    return "\n".join(lines)


@click.command(name="promote")
@click.argument("ref", metavar="MODEL@VERSION")
@click.option("--to", "alias", required=True, metavar="ALIAS", help="The alias to move.")
@click.option("--reason", default=None, help="Why: kept in the audit log.")
@click.option(
    "--eval-data",
    default=None,
    metavar="DATASET",
    help="Score both models on this dataset version instead of the candidate's holdout.",
)
@json_option
@pass_cli
def promote_command(
    cli: CliContext, ref: str, alias: str, reason: str | None, eval_data: str | None, as_json: bool
) -> int:
    """Move ALIAS to a version through the release gates (and approvals, if required).

    Answers one of: promoted (exit 0); pending approval, with the request id (exit 8);
    refused, with each failed gate and its evidence (exit 1).
    """
    project = cli.project()
    result = project.promote(ref, alias, reason=reason, eval_data=eval_data)
    emit(as_json, result.to_dict(), lambda: _promotion_text(result))
    return {"promoted": EXIT_OK, "pending": EXIT_PENDING}.get(result.outcome, EXIT_CHECK_FAILED)


def _decision_text(result: DecisionResult) -> str:
    request = result.request
    lines = []
    if result.gates:
        lines.append(f"{request.alias} changed holder since the request; gates re-evaluated:")
        lines.extend(_gate_lines(result.gates))
    if result.outcome == "approved":
        lines.append(
            f"APPROVED: {request.model}@{request.alias} is v{request.version} "
            f"(requested by {request.requested_by}, approved by "
            f"{', '.join(request.approved_by)})"
        )
    elif result.outcome == "recorded":
        lines.append(
            f"approval recorded: {len(request.approved_by)} of {request.required}; "
            f"request {request.id} still pending"
        )
    elif result.outcome == "rejected":
        lines.append(f"REJECTED: request {request.id}; {request.alias} stays where it is")
    else:
        lines.append(f"REFUSED: {request.outcome}")
    return "\n".join(lines)


def _decision_exit(result: DecisionResult) -> int:
    if result.outcome == "refused":
        return EXIT_CHECK_FAILED
    return EXIT_PENDING if result.outcome == "recorded" else EXIT_OK


@click.command(name="approve")
@click.argument("request_id", metavar="REQUEST_ID")
@click.option("--comment", default=None, help="Kept in the audit log.")
@json_option
@pass_cli
def approve_command(cli: CliContext, request_id: str, comment: str | None, as_json: bool) -> int:
    """Approve a release request (never your own). The last approval needed moves the alias.

    Exit 0 when the alias moved, 8 when more approvals are needed, 1 when the gates fail
    against a holder that changed since the request.
    """
    project = cli.project()
    result = project.approve(request_id, comment=comment)
    emit(as_json, result.to_dict(), lambda: _decision_text(result))
    return _decision_exit(result)


@click.command(name="reject")
@click.argument("request_id", metavar="REQUEST_ID")
@click.option("--comment", default=None, help="Why: kept in the audit log.")
@json_option
@pass_cli
def reject_command(cli: CliContext, request_id: str, comment: str | None, as_json: bool) -> int:
    """Reject a release request (never your own); the alias stays where it is."""
    project = cli.project()
    result = project.reject(request_id, comment=comment)
    emit(as_json, result.to_dict(), lambda: _decision_text(result))
    return EXIT_OK


@click.command(name="rollback")
@click.argument("model", metavar="MODEL")
@click.option("--alias", default="production", show_default=True, help="The alias to move back.")
@click.option("--reason", required=True, help="Why: kept in the audit log.")
@json_option
@pass_cli
def rollback_command(cli: CliContext, model: str, alias: str, reason: str, as_json: bool) -> int:
    """Move ALIAS back to the version that held it before, in one step.

    No gates and no approval: the previous holder was released before. Rolling back again
    walks further back (3 -> 2 -> 1).
    """
    project = cli.project()
    result = project.rollback(model, alias=alias, reason=reason)
    emit(
        as_json,
        result.to_dict(),
        lambda: (
            f"ROLLED BACK: {model}@{alias} v{result.from_version} -> v{result.to_version} "
            f"(event {result.event.seq})"
        ),
    )
    return EXIT_OK


def _request_line(request: ReleaseRequest, now: datetime) -> str:
    status = request.status
    if status == "pending" and request.expired(now):
        status = "expired"
    approvals = f"{len(request.approved_by)}/{request.required}"
    return (
        f"{request.id}  {status:<10}  {request.ref + ' -> ' + request.alias:<32}  "
        f"{approvals:>5}  {request.requested_by:<12}  {request.requested_at:%Y-%m-%d %H:%M}"
    )


@click.group()
def requests() -> None:
    """List and show release requests (promotions waiting for approval)."""


@requests.command(name="list")
@click.option(
    "--status",
    type=click.Choice(
        ["pending", "approved", "rejected", "expired", "superseded", "refused", "all"]
    ),
    default="pending",
    show_default=True,
)
@click.option("--model", default=None, help="Only this model's requests.")
@json_option
@pass_cli
def requests_list(cli: CliContext, status: str, model: str | None, as_json: bool) -> int:
    """Release requests, newest first."""
    found = cli.project().requests(status=None if status == "all" else status, model=model)
    now = datetime.now(UTC)

    def text() -> str:
        if not found.requests:
            return f"no {'' if status == 'all' else status + ' '}release requests"
        header = f"{'ID':<16}  {'STATUS':<10}  {'MODEL -> ALIAS':<32}  {'OK':>5}  {'BY':<12}  AT"
        return "\n".join([header, *(_request_line(r, now) for r in found.requests)])

    emit(as_json, {"ok": True, **found.to_dict()}, text)
    return EXIT_OK


@requests.command(name="show")
@click.argument("request_id", metavar="REQUEST_ID")
@json_option
@pass_cli
def requests_show(cli: CliContext, request_id: str, as_json: bool) -> int:
    """One request with its gates, evidence and decisions."""
    shown = cli.project().request(request_id)
    request, gates = shown.request, shown.gates

    def text() -> str:
        lines = [
            f"request   {request.id} ({request.status})",
            f"release   {request.ref} -> {request.alias} (holder then: "
            f"{'none' if request.holder is None else 'v' + str(request.holder)})",
            f"by        {request.requested_by} at {request.requested_at:%Y-%m-%d %H:%M} UTC; "
            f"expires {request.expires_at:%Y-%m-%d %H:%M} UTC",
            f"needs     {request.required} approval(s)"
            + (f" from roles {', '.join(request.roles)}" if request.roles else ""),
            f"owner     {_owner(request.owner)} (release)",
        ]
        if request.reason:
            lines.append(f"reason    {request.reason}")
        lines.append("gates:")
        lines.extend(_gate_lines(gates))
        for actor, decision, comment, at in request.approvals:
            lines.append(
                f"{decision:<9} {actor} at {at:%Y-%m-%d %H:%M}"
                + (f": {comment}" if comment else "")
            )
        if request.outcome:
            lines.append(f"outcome   {request.outcome}")
        return "\n".join(lines)

    emit(as_json, {"ok": True, **shown.to_dict()}, text)
    return EXIT_OK


def _anchor(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or int(seq) < 1 or not digest.startswith("blake3:"):
        raise click.BadParameter(
            f"expected SEQ:HASH like 42:blake3:<64 hex> (from an earlier verify), got {text!r}",
            param_hint="--expect",
        )
    return int(seq), digest


def _event_line(event: AuditEvent) -> str:
    reason = f"  {event.reason}" if event.reason else ""
    return (
        f"{event.seq:>6}  {event.at:%Y-%m-%d %H:%M:%S}  {event.actor:<12}  {event.kind:<18}  "
        f"{event.target}{reason}"
    )


@click.command(name="audit-log")
@click.argument("target", required=False, metavar="[MODEL | verify]")
@click.option("--model", "model_option", default=None, help="Only this model's events.")
@click.option("--kind", "kinds", multiple=True, help="Only events of this kind (repeatable).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="The newest N events.")
@click.option("--after", type=click.IntRange(min=0), default=0, help="Events after this seq.")
@click.option(
    "--expect",
    "anchors",
    multiple=True,
    metavar="SEQ:HASH",
    help="With verify: event SEQ must have this hash, as recorded earlier outside the "
    "database (e.g. in CI logs). Catches a chain rewritten from that event on.",
)
@json_option
@pass_cli
def audit_log(
    cli: CliContext,
    target: str | None,
    model_option: str | None,
    kinds: tuple[str, ...],
    limit: int | None,
    after: int,
    anchors: tuple[str, ...],
    as_json: bool,
) -> int:
    """The audit log: every registration, gate evaluation, request, decision and alias move.

    `keel audit-log verify` recomputes the hash chain, checks it against the newest signed
    checkpoint in the artifact store, and exits 1 at the first event that was edited,
    deleted or reordered, or at the checkpoint a rewritten or shortened log contradicts; a
    chain that holds is checkpointed (a model named "verify" is reached with --model).
    """
    project = cli.project()
    if target == "verify":
        expected = [_anchor(text) for text in anchors]
        verification = project.audit_verify(expect=expected)
        report, checkpoints = verification.chain, verification.checkpoints

        def verified() -> str:
            head = f"head: event {report.head_seq} {report.head_hash}"
            head += f"\nanchor it: --expect {report.head_seq}:{report.head_hash}"
            if checkpoints is not None and checkpoints.checked is not None:
                checked = checkpoints.checked
                verdict = "holds" if report.ok else "checked"
                head += (
                    f"\nsigned checkpoint {verdict}: event {checked.seq}, "
                    f"{checked.at:%Y-%m-%d %H:%M:%S} UTC, key {checked.key_id}"
                )
            if checkpoints is not None and checkpoints.written is not None:
                head += f"\ncheckpoint written: event {checkpoints.written.seq}"
            note = verification.note or (checkpoints.note if checkpoints is not None else "")
            if note:
                head += f"\n{note}"
            if report.ok:
                return f"OK: {report.events} events chain correctly\n{head}"
            broken = report.broken
            assert broken is not None
            return (
                f"BROKEN at event {broken.seq}: {broken.rule}: {broken.detail}\n"
                f"{report.events} events before it verify\n{head}"
            )

        emit(as_json, verification.to_dict(), verified)
        return EXIT_OK if report.ok else EXIT_CHECK_FAILED
    if anchors:
        raise click.UsageError("--expect only applies to `keel audit-log verify`")
    model = model_option or target
    events = project.audit(model=model, kinds=kinds, after=after, limit=limit).events

    def text() -> str:
        if not events:
            return "no events" + (f" for {model}" if model else "")
        header = f"{'SEQ':>6}  {'AT (UTC)':<19}  {'ACTOR':<12}  {'KIND':<18}  WHAT"
        return "\n".join([header, *(_event_line(e) for e in events)])

    emit(as_json, {"ok": True, "events": [e.to_dict() for e in events]}, text)
    return EXIT_OK
