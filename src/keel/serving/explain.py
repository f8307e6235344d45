"""`keel explain PREDICTION_ID`: the whole chain behind one logged prediction.

prediction (time, model version, slot, inputs, outputs) -> model version (package digest,
flavor, metrics) -> run (params, seed) -> dataset version (content hash, rows) -> feature
and training code hashes -> git commit -> environment lock -> the release that made the
version the holder of the alias its slot serves, as of the prediction's time: the audit
event, the release request, who requested and who approved it, and the gates' results.

Everything is read from the stores, never recomputed (`keel.lineage.chain` for the model
version's links); a missing link is reported as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from keel.domain.audit import AuditEvent
from keel.domain.prediction import LoggedPrediction
from keel.errors import ConfigError, NotFound
from keel.predlog.ids import is_prediction_id, normalise_prediction_id

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["KEY_PACKAGES", "check_prediction_id", "explain_prediction"]

#: The packages of an environment lock that `explain` names (when the lock has them).
KEY_PACKAGES: Final = (
    "keelml",
    "scikit-learn",
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "skops",
    "xgboost",
    "lightgbm",
    "torch",
)
#: Which alias each serving slot answers from.
_SLOT_ALIASES: Final = {"production": "production", "canary": "canary"}
#: Audit events that change which version holds an alias.
_HOLDER_EVENTS: Final = ["model.registered", "alias.moved", "alias.rolled_back", "alias.removed"]
#: An event that leaves its alias with no holder (the canary ended).
_REMOVED: Final = "alias.removed"


def check_prediction_id(text: str) -> str:
    """The id, normalised (trimmed, lowercase, UUID dashes dropped); `ConfigError` naming the
    form when the text is not 32 hex characters."""
    normalised = normalise_prediction_id(text)
    if normalised is None:
        raise ConfigError(
            f"{text!r} is not a prediction id: expected 32 hex characters as keel returns "
            "them (the `id` of a /predict or OIP response, or predict-batch's prediction_id)",
            problems=[("PREDICTION_ID", "must be 32 hex characters (dashes of a UUID allowed)")],
        )
    return normalised


def explain_prediction(project: Workspace, prediction_id: str) -> dict[str, Any]:
    """The chain behind one prediction as a JSON-ready document.

    `ConfigError` for text that is not a prediction id; `NotFound` naming the id when the
    log has no such prediction.
    """
    from keel.lineage.chain import model_lineage
    from keel.predlog.read import get

    normalised = check_prediction_id(prediction_id)
    # Well-formed but outside the layout keel issues: no prediction can have it.
    prediction = get(project, normalised) if is_prediction_id(normalised) else None
    if prediction is None:
        raise NotFound(
            f"no prediction {normalised} is in the prediction log",
            hint="check the id; predictions are logged when serving.log.enabled is true "
            "(`keel predictions stats` shows what the log holds)",
        )
    chain = model_lineage(project, prediction.ref)
    if chain["environment"] is not None:
        chain["environment"]["key_packages"] = _key_packages(project, chain["run"]["id"])
    return {
        "prediction": prediction.to_dict(),
        # Every label it has had, the current one last: a replaced label stays visible.
        "labels": [entry.to_dict() for entry in project.metadata.feedback.history(normalised)],
        **chain,
        "release": _release(project, prediction),
    }


def _key_packages(project: Workspace, run_id: str) -> dict[str, str]:
    from keel.code.environment import recorded_environment

    lock = recorded_environment(project, run_id)
    if lock is None:
        return {}
    versions = lock.package_versions
    return {name: versions[name] for name in KEY_PACKAGES if name in versions}


def _release(project: Workspace, prediction: LoggedPrediction) -> dict[str, Any]:
    """Which aliases the version held when it answered, and the release behind the one its
    slot serves (or, for batch, pinned and shadow rows, behind each alias it held)."""
    events = project.metadata.audit.events(model=prediction.model, kinds=_HOLDER_EVENTS)
    by_alias: dict[str, list[AuditEvent]] = {}
    for event in events:
        if event.alias is not None:
            by_alias.setdefault(event.alias, []).append(event)
    held: dict[str, AuditEvent] = {}
    for name, history in by_alias.items():
        then = _holder_event(history, prediction)
        if then is not None and then.kind != _REMOVED and then.version == prediction.version:
            held[name] = then
    alias = _SLOT_ALIASES.get(prediction.slot)
    document: dict[str, Any] = {
        "slot": prediction.slot,
        "alias": alias,
        "aliases_held": sorted(held),
        "holder_at_prediction": None,
        "releases": [],
    }
    if alias is not None:
        moves = by_alias.get(alias, [])
        current = _holder_event(moves, prediction)
        document["holder_at_prediction"] = (
            None if current is None or current.kind == _REMOVED else current.version
        )
        # Not held then: a server that had not yet reloaded after the alias moved away,
        # or a row logged by hand. Name the release of this version to the alias nearest
        # before the prediction, else the first after it.
        ours = [e for e in moves if e.version == prediction.version and e.kind != _REMOVED]
        earlier = [e for e in ours if e.at <= prediction.at]
        release = held.get(alias) or (earlier[-1] if earlier else next(iter(ours), None))
        if release is not None:
            document["releases"].append(_release_record(project, release, moves))
    else:
        for name in sorted(held, key=_alias_order):
            document["releases"].append(_release_record(project, held[name], by_alias[name]))
    return document


def _alias_order(alias: str) -> tuple[int, str]:
    return ({"production": 0, "canary": 1}.get(alias, 2), alias)


def _holder_event(moves: Sequence[AuditEvent], prediction: LoggedPrediction) -> AuditEvent | None:
    """The newest event at or before the prediction's time, i.e. what set the holder then."""
    current = None
    for event in moves:
        if event.at > prediction.at:
            break
        current = event
    return current


def _release_record(
    project: Workspace, event: AuditEvent, moves: Sequence[AuditEvent]
) -> dict[str, Any]:
    record = _event_release(project, event)
    if event.kind == "alias.rolled_back":
        # A rollback returns to an earlier holder: show the release that first put it there.
        earlier = next(
            (
                e
                for e in reversed(moves)
                if e.seq < event.seq and e.version == event.version and e.kind != event.kind
            ),
            None,
        )
        record["original"] = None if earlier is None else _event_release(project, earlier)
    return record


def _event_release(project: Workspace, event: AuditEvent) -> dict[str, Any]:
    releases = project.metadata.releases
    evidence = event.evidence
    record: dict[str, Any] = {
        "alias": event.alias,
        "version": event.version,
        "how": {
            "alias.moved": "promoted",
            "alias.rolled_back": "rolled back",
            "model.registered": "registered",
        }.get(event.kind, event.kind),
        "event": {
            "seq": event.seq,
            "kind": event.kind,
            "at": event.at.isoformat(),
            "actor": event.actor,
            "reason": event.reason,
            "from": evidence.get("from"),
            "hash": event.hash,
        },
        "request": None,
        "requested_by": event.actor,
        "requested_at": event.at.isoformat(),
        "approvals": [],
        "evaluation": evidence.get("evaluation"),
        "gates": [],
    }
    request_id = evidence.get("request")
    if isinstance(request_id, str):
        request = releases.request(request_id)
        record["request"] = request.id
        record["requested_by"] = request.requested_by
        record["requested_at"] = request.requested_at.isoformat()
        record["approvals"] = [
            {"actor": actor, "decision": decision, "comment": comment, "at": at.isoformat()}
            for actor, decision, comment, at in request.approvals
        ]
    evaluation = record["evaluation"]
    if isinstance(evaluation, str):
        try:
            record["gates"] = [gate.to_dict() for gate in releases.evaluation(evaluation)]
        except NotFound:
            record["gates"] = None
    return record
