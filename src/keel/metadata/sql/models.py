"""The model registry in SQL (the `models` aggregate): models, versions and aliases."""

from __future__ import annotations

import builtins
import dataclasses
import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, Row, Select, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from keel.domain.audit import AuditEvent
from keel.domain.digest import Digest
from keel.domain.model import (
    CANDIDATE,
    Alias,
    ModelRef,
    ModelVersion,
    RegisteredModel,
    check_alias_name,
    check_model_name,
    contract_json,
    metrics_json,
    parse_model_ref,
)
from keel.domain.run import is_run_id
from keel.errors import ConfigError, Conflict, NotFound
from keel.metadata.base import ModelRegistry
from keel.metadata.sql.audit import append_event
from keel.metadata.sql.engine import read_transaction, write_transaction
from keel.metadata.sql.schema import (
    alias_history,
    artifact_holders,
    audit_events,
    model_aliases,
    model_versions,
    models,
    reference_profiles,
    runs,
)
from keel.metadata.sql.statements import insert_ignoring_duplicates, lock_artifact

__all__ = ["SqlModelRegistry", "record_alias_move"]

#: How many names an error lists before "and N more".
_SHOWN: Final = 10
_HINT_LIST: Final = "`keel models list` shows the registered models"


class SqlModelRegistry(ModelRegistry):
    """`ModelRegistry` on SQLite or PostgreSQL.

    Race safety: a registration first makes sure the model's row exists (`INSERT ... ON
    CONFLICT DO NOTHING`), then locks it (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite's
    `BEGIN IMMEDIATE` already serialises writers) before reading the highest version.
    Registrations of one model therefore queue behind each other and get consecutive
    numbers, while registrations of different models do not wait for each other on
    PostgreSQL. The package's artifact row is locked `FOR KEY SHARE` before it is held,
    as elsewhere, so gc cannot forget it in between. Alias moves (issue 5's promotion)
    should take the same model-row lock, so they serialise with registrations.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- writing --------------------------------------------------------------------------

    def register(
        self,
        model: str,
        *,
        run_id: str,
        package: Digest,
        flavor: str,
        inference_contract: Mapping[str, object],
        metrics: Mapping[str, float],
        actor: str,
        alias: str | None = CANDIDATE,
        sign: Callable[[ModelVersion], Mapping[str, str]] | None = None,
        announce: bool = True,
    ) -> ModelVersion:
        """Record the next version of `model`, hold its package and set `alias`, atomically."""
        check_model_name(model)
        if alias is not None:
            check_alias_name(alias)
        if alias is not None and not announce:
            raise ConfigError(
                "alias: must be None when announce is false (complete_registration sets it)",
                problems=[("alias", "must be None when announce is false")],
            )
        if not is_run_id(run_id):
            raise ConfigError(
                f"run id must be 32 lowercase hex characters, got {run_id!r}",
                problems=[("run_id", "must be 32 lowercase hex characters")],
            )
        if not flavor or not flavor.strip():
            raise ConfigError(
                "model flavor must be a non-empty name, e.g. 'sklearn'",
                problems=[("flavor", "must be non-empty")],
            )
        contract_text = contract_json(inference_contract)
        metrics_text = metrics_json(metrics)
        now = datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            status = conn.execute(
                select(runs.c.status)
                .where(runs.c.id == run_id)
                .with_for_update(read=True, key_share=True)
            ).scalar()
            if status is None:
                raise NotFound(
                    f"cannot register {model}: run {run_id} is not recorded",
                    hint="`keel runs list` shows the recorded runs",
                )
            if status == "failed":
                raise Conflict(
                    f"cannot register {model}: run {run_id} failed",
                    hint="register the model of a run that completed (or is still running)",
                )
            if not lock_artifact(conn, package):
                raise NotFound(
                    f"cannot register {model}: its package {package} is not recorded "
                    "as an artifact",
                    hint="store the package first (Project.put_artifact)",
                )
            conn.execute(
                insert_ignoring_duplicates(
                    conn, models, {"name": model, "created_at": now, "created_by": actor}, "name"
                )
            )
            # The model row is the lock every registration of this model queues behind.
            conn.execute(select(models.c.name).where(models.c.name == model).with_for_update())
            highest = conn.execute(
                select(func.max(model_versions.c.version)).where(model_versions.c.model == model)
            ).scalar()
            version = ModelVersion(
                model=model,
                version=(highest or 0) + 1,
                run_id=run_id,
                package=package,
                flavor=flavor,
                inference_contract=json.loads(contract_text),
                metrics=json.loads(metrics_text),
                created_at=now,
                created_by=actor,
            )
            if sign is not None:
                # Signed inside the transaction: the number is only known once allocated, and
                # a version is never visible without the signature it was registered with.
                version = dataclasses.replace(version, signature=dict(sign(version)))
            conn.execute(
                insert(model_versions).values(
                    model=model,
                    version=version.version,
                    run_id=run_id,
                    package=str(package),
                    flavor=flavor,
                    inference_contract=contract_text,
                    metrics=metrics_text,
                    created_at=now,
                    created_by=actor,
                    signature=_signature_json(version.signature),
                )
            )
            holder = {"digest": str(package), "holder": version.holder, "created_at": now}
            conn.execute(
                insert_ignoring_duplicates(conn, artifact_holders, holder, "digest", "holder")
            )
            if announce:
                _announce(conn, version, alias, actor, now)
        return version

    def complete_registration(
        self, model: str, version: int, *, alias: str | None, actor: str
    ) -> AuditEvent:
        """Announce a version registered with `announce=False` and point `alias` at it, in
        one transaction, once its run completed and its reference profile is recorded."""
        if alias is not None:
            check_alias_name(alias)
        with write_transaction(self._engine) as conn:
            _require_model(conn, model)
            # The model-row lock: serialised with registrations and alias moves.
            conn.execute(select(models.c.name).where(models.c.name == model).with_for_update())
            current = _get(conn, model, version)
            status = conn.execute(select(runs.c.status).where(runs.c.id == current.run_id)).scalar()
            missing = [] if status == "completed" else [f"its run {current.run_id} is {status}"]
            profiled = conn.execute(
                select(reference_profiles.c.version).where(
                    reference_profiles.c.model == model, reference_profiles.c.version == version
                )
            ).first()
            if profiled is None:
                missing.append("it has no reference profile")
            if missing:
                raise Conflict(
                    f"cannot complete the registration of {current.ref}: {'; '.join(missing)}",
                    hint="run `keel train` again on the same inputs",
                )
            announced = conn.execute(
                select(audit_events.c.seq).where(
                    audit_events.c.model == model,
                    audit_events.c.version == version,
                    audit_events.c.kind == "model.registered",
                )
            ).first()
            if announced is not None:
                raise Conflict(f"{current.ref} is registered already")
            if alias is not None and _current(conn, model, alias) == version:
                alias = None
            return _announce(conn, current, alias, actor, datetime.now(UTC))

    def record_signature(
        self, model: str, version: int, signature: Mapping[str, str], *, actor: str
    ) -> ModelVersion:
        """Store `signature` as `model@version`'s, with a `model.signed` audit event."""
        now = datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            _require_model(conn, model)
            conn.execute(select(models.c.name).where(models.c.name == model).with_for_update())
            current = _get(conn, model, version)
            conn.execute(
                update(model_versions)
                .where(model_versions.c.model == model, model_versions.c.version == version)
                .values(signature=_signature_json(signature))
            )
            append_event(
                conn,
                actor=actor,
                kind="model.signed",
                model=model,
                version=version,
                evidence={
                    "package": str(current.package),
                    "flavor": current.flavor,
                    "key_id": str(signature.get("key_id")),
                    "replaced": current.signature is not None,
                },
                at=now,
            )
        return dataclasses.replace(current, signature=dict(signature))

    # --- reading --------------------------------------------------------------------------

    def get(self, model: str, version: int) -> ModelVersion:
        """One version; `NotFound` naming the versions that exist."""
        with read_transaction(self._engine) as conn:
            return _get(conn, model, version)

    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """The version named by `name@3`, `name@alias`, `name@latest` or `name` (newest)."""
        parsed = parse_model_ref(ref) if isinstance(ref, str) else ref
        with read_transaction(self._engine) as conn:
            if parsed.kind == "version" and parsed.version is not None:
                return _get(conn, parsed.model, parsed.version)
            _require_model(conn, parsed.model)
            if parsed.kind == "alias":
                number = conn.execute(
                    select(model_aliases.c.version).where(
                        model_aliases.c.model == parsed.model,
                        model_aliases.c.alias == parsed.alias,
                    )
                ).scalar()
                if number is None:
                    held = _aliases(conn, parsed.model)
                    known = ", ".join(f"{a.name} -> {a.version}" for a in held) or "none"
                    raise NotFound(
                        f"model {parsed.model} has no alias {parsed.alias!r} "
                        f"(its aliases: {known})",
                        hint=f"`keel models show {parsed.model}` lists its versions and aliases",
                    )
                return _get(conn, parsed.model, number)
            newest = _select_versions(
                conn,
                select(model_versions)
                .where(model_versions.c.model == parsed.model)
                .order_by(model_versions.c.version.desc())
                .limit(1),
            )
            return newest[0]

    def list_models(self) -> builtins.list[RegisteredModel]:
        """Every model with its newest version, version count and aliases, by name."""
        v = model_versions.c
        query = (
            select(
                models.c.name,
                models.c.created_at,
                models.c.created_by,
                func.max(v.version).label("latest"),
                func.count(v.version).label("version_count"),
            )
            .join(model_versions, v.model == models.c.name)
            .group_by(models.c.name, models.c.created_at, models.c.created_by)
            .order_by(models.c.name)
        )
        with read_transaction(self._engine) as conn:
            rows = conn.execute(query).all()
            held: dict[str, builtins.list[Alias]] = defaultdict(builtins.list)
            for row in conn.execute(
                select(model_aliases).order_by(model_aliases.c.model, model_aliases.c.alias)
            ):
                held[row.model].append(_to_alias(row))
        return [
            RegisteredModel(
                name=row.name,
                created_at=row.created_at,
                created_by=row.created_by,
                latest_version=row.latest,
                version_count=row.version_count,
                aliases=tuple(held[row.name]),
            )
            for row in rows
        ]

    def versions(
        self, model: str, *, before: int | None = None, limit: int | None = None
    ) -> builtins.list[ModelVersion]:
        """The model's versions, newest first; `NotFound` for an unknown model. A page of
        them with `before` (only versions below it) and `limit`."""
        query = (
            select(model_versions)
            .where(model_versions.c.model == model)
            .order_by(model_versions.c.version.desc())
        )
        if before is not None:
            query = query.where(model_versions.c.version < before)
        if limit is not None:
            query = query.limit(limit)
        with read_transaction(self._engine) as conn:
            _require_model(conn, model)
            return _select_versions(conn, query)

    def aliases(self, model: str) -> builtins.list[Alias]:
        """The model's aliases, by name; `NotFound` for an unknown model."""
        with read_transaction(self._engine) as conn:
            _require_model(conn, model)
            return _aliases(conn, model)


# Statements of the alias-move path, built once: a move runs several per transaction, and
# building SQLAlchemy constructs costs more than executing them on SQLite.
_HOLDER = select(model_aliases.c.version).where(
    model_aliases.c.model == bindparam("model"), model_aliases.c.alias == bindparam("alias")
)
_INSERT_HISTORY = insert(alias_history)
_UPSERT_ALIAS: dict[str, Any] = {}


def _upsert_alias(dialect: str) -> Any:
    statement = _UPSERT_ALIAS.get(dialect)
    if statement is None:
        base: Any = (postgresql if dialect == "postgresql" else sqlite).insert(model_aliases)
        statement = base.on_conflict_do_update(
            index_elements=["model", "alias"],
            set_={
                "version": base.excluded.version,
                "set_at": base.excluded.set_at,
                "set_by": base.excluded.set_by,
            },
        )
        _UPSERT_ALIAS[dialect] = statement
    return statement


def _announce(
    conn: Connection, version: ModelVersion, alias: str | None, actor: str, now: datetime
) -> AuditEvent:
    """The `model.registered` event, and the move of `alias` it records."""
    event = append_event(
        conn,
        actor=actor,
        kind="model.registered",
        model=version.model,
        version=version.version,
        alias=alias,
        evidence={
            "run": version.run_id,
            "package": str(version.package),
            "flavor": version.flavor,
            "metrics": dict(version.metrics),
        },
        at=now,
    )
    if alias is not None:
        previous = _current(conn, version.model, alias)
        record_alias_move(
            conn,
            event,
            model=version.model,
            alias=alias,
            version=version.version,
            previous=previous,
        )
    return event


def record_alias_move(
    conn: Connection,
    event: AuditEvent,
    *,
    model: str,
    alias: str,
    version: int,
    previous: int | None,
    kind: str = "move",
) -> None:
    """Point the alias and append its history row, keyed by the event that records it."""
    _set_alias(conn, Alias(model, alias, version, event.at, event.actor))
    conn.execute(
        _INSERT_HISTORY,
        {
            "seq": event.seq,
            "model": model,
            "alias": alias,
            "version": version,
            "previous": previous,
            "kind": kind,
            "at": event.at,
            "actor": event.actor,
        },
    )


def _current(conn: Connection, model: str, alias: str) -> int | None:
    value = conn.execute(_HOLDER, {"model": model, "alias": alias}).scalar()
    return None if value is None else int(value)


def _set_alias(conn: Connection, alias: Alias) -> None:
    """Point an alias at a version (creating or moving it), inside the caller's transaction.

    The caller holds the model-row lock and appends the audit event that records the move
    in the same transaction (`record_alias_move`).
    """
    conn.execute(
        _upsert_alias(conn.dialect.name),
        {
            "model": alias.model,
            "alias": alias.name,
            "version": alias.version,
            "set_at": alias.set_at,
            "set_by": alias.set_by,
        },
    )


_MODEL_EXISTS = select(models.c.name).where(models.c.name == bindparam("model"))


def _require_model(conn: Connection, model: str) -> None:
    check_model_name(model)
    if conn.execute(_MODEL_EXISTS, {"model": model}).first() is not None:
        return
    names = builtins.list(
        conn.execute(select(models.c.name).order_by(models.c.name).limit(_SHOWN + 1)).scalars()
    )
    if not names:
        raise NotFound(
            f"no model {model!r} is registered: no models are registered yet",
            hint="run `keel train` to register one",
        )
    shown = ", ".join(names[:_SHOWN]) + (" and more" if len(names) > _SHOWN else "")
    raise NotFound(f"no model {model!r} is registered (registered: {shown})", hint=_HINT_LIST)


def _get(conn: Connection, model: str, version: int) -> ModelVersion:
    _require_model(conn, model)
    found = _select_versions(
        conn,
        select(model_versions).where(
            model_versions.c.model == model, model_versions.c.version == version
        ),
    )
    if found:
        return found[0]
    low, high = conn.execute(
        select(func.min(model_versions.c.version), func.max(model_versions.c.version)).where(
            model_versions.c.model == model
        )
    ).one()
    span = f"{low}" if low == high else f"{low} to {high}"
    raise NotFound(
        f"model {model} has no version {version} (its versions: {span})",
        hint=f"`keel models show {model}` lists its versions",
    )


def _aliases(conn: Connection, model: str) -> builtins.list[Alias]:
    query = select(model_aliases).where(model_aliases.c.model == model)
    return [_to_alias(row) for row in conn.execute(query.order_by(model_aliases.c.alias))]


def _select_versions(conn: Connection, query: Select[Any]) -> builtins.list[ModelVersion]:
    return [_to_version(row) for row in conn.execute(query)]


def _to_version(row: Row[Any]) -> ModelVersion:
    return ModelVersion(
        model=row.model,
        version=row.version,
        run_id=row.run_id,
        package=Digest.parse(row.package),
        flavor=row.flavor,
        inference_contract=json.loads(row.inference_contract),
        metrics=json.loads(row.metrics),
        created_at=row.created_at,
        created_by=row.created_by,
        signature=_parse_signature(row.signature),
    )


def _signature_json(signature: Mapping[str, str] | None) -> str | None:
    return None if signature is None else json.dumps(dict(signature), sort_keys=True)


def _parse_signature(text: str | None) -> dict[str, str] | None:
    if text is None:
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    # Whatever else a database writer left there is kept for verification to refuse by name.
    return parsed if isinstance(parsed, dict) else {"malformed": text}


def _to_alias(row: Row[Any]) -> Alias:
    return Alias(row.model, row.alias, row.version, row.set_at, row.set_by)
