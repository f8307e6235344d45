"""`keel train`: snapshot -> contract -> features (after the split) -> train -> evaluate,
in one module of about 800 lines on purpose: the steps, their cache keys and the run that
records them are one sequence read top to bottom, and the order that keeps a crash safe (the
run completed before its version is announced and may hold an alias) is checked by reading
it in that order.

Each step after the snapshot has a cache key: BLAKE3 over what determines its output (the
dataset id, the code fingerprints of the entry points' project-local files, the split, params,
seed). A step whose key is in the step cache is not run again; its stored output is reused and
the run records a cache hit. Editing only the feature code therefore re-runs features and
training; editing only the training code re-runs training alone; changing nothing re-runs
nothing and registers nothing (`force=True` re-runs every step and registers a new version).
"""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import blake3

from keel.domain.digest import Digest
from keel.domain.run import StepRecord
from keel.errors import ConfigError, ContractViolation, IntegrityError
from keel.faults import pause_point

if TYPE_CHECKING:
    from keel.code.entrypoints import CodeFingerprint
    from keel.contracts.model import Contract
    from keel.domain.dataset import DatasetVersion
    from keel.tracking import RunContext
    from keel.workspace import Workspace

__all__ = ["STEPS", "StepOutcome", "TrainResult", "require_pipeline", "train"]

#: The steps in order; the version in a step's cache key changes when its output format does.
STEPS: Final = ("snapshot", "contract", "features", "train", "evaluate", "register")
_FORMAT: Final = 1
_TARGET: Final = "__keel_target__"
_HOLDOUT: Final = "__keel_holdout__"
#: Rows the model trains on (the others: holdout, or older than the training window).
_TRAIN: Final = "__keel_train__"

#: Called with (step name, what happened) as the pipeline goes; the CLI prints it.
Progress = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class StepOutcome:
    step: str
    outcome: str  # "ran", "cache_hit" or "skipped"
    seconds: float
    output: Digest | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TrainResult:
    run_id: str
    dataset: DatasetVersion
    steps: list[StepOutcome]
    metrics: dict[str, float]
    package: Digest
    registered: Any | None = None  # the ModelVersion, when one was registered
    notes: list[str] = field(default_factory=list)
    #: The existing ModelVersion whose package is this run's, byte for byte: nothing new
    #: was registered.
    unchanged: Any | None = None

    @property
    def cache_hits(self) -> list[str]:
        return [step.step for step in self.steps if step.outcome == "cache_hit"]

    def to_dict(self) -> dict[str, Any]:
        """The document `keel train --json` prints (without its `ok`)."""
        return {
            "run": self.run_id,
            "dataset": self.dataset.id,
            "steps": [
                {
                    "step": step.step,
                    "outcome": step.outcome,
                    "seconds": round(step.seconds, 3),
                    "output": step.output,
                    "detail": step.detail,
                }
                for step in self.steps
            ],
            "metrics": self.metrics,
            "package": self.package,
            "model": None
            if self.registered is None
            else {"name": self.registered.model, "version": self.registered.version},
            # The version that already holds this very package, when nothing new was registered.
            "unchanged": None
            if self.unchanged is None
            else {"name": self.unchanged.model, "version": self.unchanged.version},
            "notes": self.notes,
        }


def _key(step: str, inputs: Mapping[str, Any]) -> str:
    text = json.dumps({"step": step, "format": _FORMAT, **inputs}, sort_keys=True, default=str)
    return blake3.blake3(text.encode()).hexdigest()


def require_pipeline(project: Workspace, needed_by: str = "training") -> tuple[Any, Any, Any, str]:
    """keel.yaml's data, features and training sections and the target, or a `ConfigError`
    naming every missing key for `needed_by` (what the caller is about to do)."""
    spec = project.spec
    missing = [
        key
        for key, value in (
            ("data", spec.data),
            ("features", spec.features),
            ("training", spec.training),
        )
        if value is None
    ]
    if spec.data is not None and not spec.data.target:
        missing.append("data.target")
    if missing:
        raise ConfigError(
            f"keel.yaml: {needed_by} needs {', '.join(missing)}",
            problems=[(key, "required key is missing") for key in missing],
            hint="`keel init --example flights` writes a complete project to copy from",
        )
    assert spec.data is not None and spec.features is not None and spec.training is not None
    return spec.data, spec.features, spec.training, str(spec.data.target)


def train(
    project: Workspace,
    *,
    force: bool = False,
    as_of: datetime | None = None,
    progress: Progress | None = None,
    dataset: Digest | None = None,
    register: bool = True,
    purpose: str = "train",
) -> TrainResult:
    """Run the project's pipeline once and return what each step did.

    `dataset` pins a recorded dataset version instead of snapshotting the source (how
    `keel reproduce` rebuilds a run); `register=False` registers no model version.

    `as_of` is the time the contract's freshness rule is checked against (default: now); a
    replay of historical data passes the time it pretends to be. A contract violation stops
    the run (recorded as failed, with the report as an artifact) with ContractViolation.
    """
    from keel.code.entrypoints import entry_point_source
    from keel.code.environment import LOCK_ARTIFACT, capture_environment
    from keel.code.git import git_state
    from keel.data.snapshot import load_table, snapshot

    _, features, training, target = require_pipeline(project)
    say = progress or (lambda step, text: None)
    project_dir = project.settings.project_dir
    moment = as_of or datetime.now(UTC)
    outcomes: list[StepOutcome] = []

    started = time.perf_counter()
    if dataset is not None:
        pinned = project.metadata.datasets.get(dataset)
        snap_version, reused = pinned, True
    else:
        snap = snapshot(project)
        snap_version, reused = snap.version, snap.reused
    outcomes.append(
        StepOutcome(
            "snapshot",
            "cache_hit" if reused else "ran",
            time.perf_counter() - started,
            snap_version.id,
            f"dataset {snap_version.short}, {snap_version.rows:,} rows",
        )
    )
    say("snapshot", outcomes[-1].detail + (" (unchanged)" if reused else ""))
    feature_code = entry_point_source(features.entry_point, project_dir)
    training_code = entry_point_source(training.entry_point, project_dir)
    environment = capture_environment()
    git = git_state(project_dir)
    lineage: dict[str, Any] = {
        "dataset": snap_version.id,
        "feature_code_hash": str(feature_code.digest),
        "training_code_hash": str(training_code.digest),
        "environment": str(environment.digest),
    }
    if git is not None and git.commit is not None:
        lineage.update(git_commit=git.commit, git_dirty=git.dirty)
        if git.diff_digest is not None:
            lineage["git_diff_hash"] = str(git.diff_digest)
    with project.start_run(
        params=dict(training.params), seed=training.seed, tags={"keel.step": purpose}, **lineage
    ) as run:
        events = _Lineage(project, run.id, snap_version, environment.keel_version)
        events.start()
        try:
            run.set_tag("keel.as_of", moment.isoformat())  # reproduce checks the contract as of it
            run.log_artifact(environment.to_json(), LOCK_ARTIFACT)
            table = load_table(project, snap_version.id)
            _contract(
                project, run, table, snap_version, moment, force=force, outcomes=outcomes, say=say
            )
            result = _model_steps(
                project,
                register,
                run,
                table,
                snap_version,
                target,
                feature_code,
                training_code,
                force=force,
                outcomes=outcomes,
                say=say,
            )
        except BaseException as exc:
            events.fail(exc)
            raise
        events.complete(result)
        for problem in events.problems:
            run.set_tag("keel.lineage_problem", problem)
        finished = dataclasses.replace(result, notes=[*result.notes, *events.problems])
    # The run is completed now: only then may the version hold an alias (keel.release.usable).
    pause_point("train.completed")
    return _announce(project, finished, say)


class _Lineage:
    """OpenLineage START/COMPLETE/FAIL events of one run, appended to
    `.keel/lineage/events.jsonl` (one JSON event per line, fsynced) for a lineage backend
    (Marquez, DataHub...) to ingest."""

    def __init__(
        self, project: Workspace, run_id: str, dataset: DatasetVersion, keel_version: str
    ) -> None:
        from keel.lineage import InputDatasetInfo, RunInfo, emitter_for

        target = project.settings.openlineage or (
            project.settings.state_dir / "lineage" / "events.jsonl"
        )
        self._emitter = emitter_for(target)
        self.problems: list[str] = []
        self._project = project
        self._info = RunInfo(
            project=project.spec.name,
            keel_run_id=run_id,
            dataset=InputDatasetInfo(
                namespace=project.spec.name,
                name=f"datasets/{project.spec.name}",
                version=str(dataset.id),
                columns=dataset.columns,
                source_name=dataset.format,
                source_uri=dataset.source,
            ),
            keel_version=keel_version,
        )

    def _emit(self, event: Any) -> None:
        # A lineage backend that is down must not fail training: the run records it instead.
        try:
            self._emitter.emit(event)
        except Exception as exc:  # noqa: BLE001 - any transport failure becomes a note
            self.problems.append(f"OpenLineage event not delivered: {type(exc).__name__}: {exc}")

    def start(self) -> None:
        from keel.lineage import start_event

        self._emit(start_event(self._info))

    def fail(self, error: BaseException) -> None:
        from keel.lineage import fail_event

        self._emit(fail_event(self._info, error))

    def complete(self, result: TrainResult) -> None:
        from keel.lineage import ModelOutputInfo, complete_event

        version = result.registered or next(
            (
                v
                for v in _versions(self._project, self._project.spec.name)
                if v.package == result.package
            ),
            None,
        )
        if version is None:
            return
        model = ModelOutputInfo(
            name=version.model,
            version=str(version.version),
            package_digest=str(version.package),
            flavor=version.flavor,
            keel_run_id=self._info.keel_run_id,
            metrics=result.metrics,
        )
        self._emit(complete_event(self._info, model))


def _contract(
    project: Workspace,
    run: RunContext,
    table: Any,
    dataset: DatasetVersion,
    moment: datetime,
    *,
    force: bool,
    outcomes: list[StepOutcome],
    say: Progress,
) -> None:
    """Check the data against its contract, as of `moment`; the same dataset, contract and
    time give the same answer, so a passed check is cached like any step."""
    from keel.contracts import check_contract, read_contract

    data = project.spec.data
    if data is None or not data.contract:
        outcomes.append(
            StepOutcome("contract", "skipped", 0.0, None, "no data.contract in keel.yaml")
        )
        say("contract", outcomes[-1].detail)
        return
    path = project.settings.project_dir / data.contract
    contract = read_contract(path)
    key = _key(
        "contract",
        {
            "dataset": str(dataset.id),
            "contract": blake3.blake3(path.read_bytes()).hexdigest(),
            "as_of": moment.isoformat(),
        },
    )

    def check() -> bytes:
        report = check_contract(table, contract, now=moment)
        document = json.dumps(report.to_dict()).encode()
        if not report.ok:
            run.log_artifact(document, "contract-report.json")
            first = "; ".join(
                f"{v.rule} on {v.column or 'the table'}: {v.message}" for v in report.errors[:3]
            )
            hint = f"see `keel runs show {run.id}` and `keel contract check` for every violation"
            observed = report.errors[0].observed
            newest = observed.get("newest") if isinstance(observed, dict) else None
            if {v.rule for v in report.errors} == {"stale"} and isinstance(newest, datetime):
                # Historical data (a public table, a backfill) is stale by any live rule: the
                # contract is right for production, the training run needs its own moment.
                newest = newest.astimezone(UTC).isoformat().replace("+00:00", "Z")
                hint = (
                    "if this is historical data, train as of its time "
                    f"(`keel train --as-of {newest}`); otherwise the source has stopped "
                    "delivering, or timestamp.freshness in the contract is too strict"
                )
            raise ContractViolation(
                f"the training data broke its contract ({report.summary()}): {first}",
                hint=hint,
            )
        return document

    _step(project, run, "contract", key, force, outcomes, say, check)


def _model_steps(
    project: Workspace,
    register: bool,
    run: RunContext,
    table: Any,
    dataset: DatasetVersion,
    target: str,
    feature_code: CodeFingerprint,
    training_code: CodeFingerprint,
    *,
    force: bool,
    outcomes: list[StepOutcome],
    say: Progress,
) -> TrainResult:
    from keel.pipeline.split import split_rows

    spec = project.spec
    assert spec.data is not None and spec.training is not None
    split_spec = spec.training.split
    split_inputs = {
        "dataset": str(dataset.id),
        "method": split_spec.method,
        "holdout": split_spec.holdout,
        "seed": split_spec.seed,
        "timestamp": spec.data.timestamp,
        "window": (
            None
            if spec.retraining.training_window is None
            else spec.retraining.training_window.total_seconds()
        ),
    }

    def split_and_build() -> Path:
        # The split is an input of the features step (its rows are marked in the output), so
        # it runs only when the features do; its settings are in the features cache key.
        split = split_rows(
            table,
            method=split_spec.method,
            holdout=split_spec.holdout,
            timestamp=spec.data.timestamp if spec.data is not None else None,
            seed=split_spec.seed,
            window=spec.retraining.training_window,
        )
        for name, value in split.describe().items():
            if value is not None:
                run.set_tag(f"split.{name}", value)
        say("split", f"{split.train.size:,} training rows, {split.holdout.size:,} holdout rows")
        return _build_features(project, table, split, target, feature_code)

    # Only a project that excludes columns adds the key, so other projects keep their caches.
    excluded = {"exclude": sorted(spec.data.exclude)} if spec.data.exclude else {}
    features_key = _key(
        "features",
        {**split_inputs, "code": str(feature_code.digest), "target": target, **excluded},
    )
    features_digest = _step(
        project,
        run,
        "features",
        features_key,
        force,
        outcomes,
        say,
        split_and_build,
        cache=register,
    )
    metric_names = [metric.name for metric in spec.metrics]
    train_key = _key(
        "train",
        {
            "features": str(features_digest),
            # The package bundles the feature code, so new feature code is a new model even
            # when the features it computes are byte-identical.
            "feature_code": str(feature_code.digest),
            "code": str(training_code.digest),
            "params": spec.training.params,
            "seed": spec.training.seed,
            # The inference contract lists the inputs: excluding one is a new model even when
            # the feature code never read it.
            **excluded,
        },
    )
    package_digest = _step(
        project,
        run,
        "train",
        train_key,
        force,
        outcomes,
        say,
        lambda: _train_package(project, run, features_digest, feature_code, table, target),
        # A run that registers nothing (`keel reproduce`) must not replace the outputs the next
        # `keel train` reuses: a rebuilt package with other bytes would register as new.
        cache=register,
    )
    evaluate_key = _key("evaluate", {"train": train_key, "metrics": metric_names})
    metrics_digest = _step(
        project,
        run,
        "evaluate",
        evaluate_key,
        force,
        outcomes,
        say,
        lambda: _evaluate(project, package_digest, features_digest),
        cache=register,
    )
    metrics: dict[str, float] = json.loads(project.artifacts.read_bytes(metrics_digest))
    run.log_metrics(metrics)
    result = TrainResult(
        run_id=run.id,
        dataset=dataset,
        steps=outcomes,
        metrics=metrics,
        package=package_digest,
    )
    if not register:
        return result
    return _register(project, run, result, force=force, say=say)


def _register(
    project: Workspace, run: RunContext, result: TrainResult, *, force: bool, say: Progress
) -> TrainResult:
    """Register the model as a new version (alias `candidate`), unless a version of the model
    already has this very package: then nothing is registered, even with `force`, and the
    result names that version."""
    from keel.models.package import package_manifest, untrusted_package_types
    from keel.models.signing import sign_version

    registry = project.metadata.models
    name = project.spec.name
    started = time.perf_counter()
    notes = list(result.notes)
    current = _complete_or_retire(project, run, result.package, say, notes)
    if current is not None:
        note = f"unchanged: same as {current.ref} (its package, byte for byte)"
        result.steps.append(StepOutcome("register", "skipped", 0.0, result.package, note))
        say("register", note)
        return dataclasses.replace(result, unchanged=current, notes=[*notes, note])
    with tempfile.TemporaryDirectory(prefix="keel-register-") as folder:
        path = Path(folder) / "model.tar"
        project.artifacts.get_file(result.package, path)
        manifest = package_manifest(path)  # flavor and contract, without loading the model
    refused = untrusted_package_types(manifest)
    if refused:
        # Also refused on every load; refused here too so no such version is ever signed.
        raise IntegrityError(
            f"cannot register {name}: its estimator references types keel does not load: "
            f"{', '.join(refused)}",
            hint="a function of the project's own belongs in the feature code, not the estimator",
        )
    contract = manifest.get("inference_contract") or {}
    flavor = str(manifest["flavor"])
    signer = project.keys.signer()  # created on the project's first registration
    version = registry.register(
        name,
        run_id=run.id,
        package=result.package,
        flavor=flavor,
        inference_contract=contract,
        metrics=result.metrics,
        actor=project.settings.user,
        sign=lambda registered: sign_version(signer, registered),
        # Announced (its `model.registered` event, alias `candidate`) once the run completed
        # with the reference profile recorded (`_announce`): a process killed before that
        # leaves a version no alias points at, which the next run finishes or retires.
        alias=None,
        announce=False,
    )
    pause_point("train.registered")
    run.set_tag("keel.model", version.ref)
    seconds = time.perf_counter() - started
    result.steps.append(
        StepOutcome("register", "ran", seconds, result.package, f"{version.ref} (candidate)")
    )
    say("register", version.ref)
    started = time.perf_counter()
    from keel.models.reference import record_reference

    # A version without its reference profile is never usable: a failure here fails the run.
    reference = record_reference(project, version)
    pause_point("train.profiled")
    seconds = time.perf_counter() - started
    detail = f"{reference.profile.row_count:,} rows ({reference.profile.source})"
    result.steps.append(
        StepOutcome("reference", "ran", seconds, Digest.parse(reference.profile.profile), detail)
    )
    say("reference", f"profiled in {seconds:.2f}s: {detail}")
    return dataclasses.replace(result, registered=version, notes=notes)


def _complete_or_retire(
    project: Workspace, run: RunContext, package: Digest, say: Progress, notes: list[str]
) -> Any | None:
    """The usable version of the model whose package is `package`, or None.

    A version with this package whose registration did not complete (its `keel train` was
    killed) is finished when it can be (its run completed: the reference profile is recorded
    now), or retired when it cannot (its run failed), so that a new one is registered.
    """
    from keel.errors import Conflict, NotFound
    from keel.models.reference import record_reference
    from keel.release.usable import missing, retired_reason
    from keel.tracking import reap_dead_runs

    same = [v for v in _versions(project, project.spec.name) if v.package == package]
    if not same:
        return None
    # A run whose process died on this host fails now, not after the heartbeat timeout.
    reap_dead_runs(project.metadata.runs)
    for version in reversed(same):
        problems = missing(project, version)
        if not problems:
            return version
        try:
            status = project.metadata.runs.get(version.run_id).status
        except NotFound:
            status = "failed"
        if status == "completed":
            record_reference(project, version)
            note = f"completed {version.ref}: its reference profile was missing, now recorded"
            notes.append(note)
            say("register", note)
            return version
        if status == "running":
            raise Conflict(
                f"{version.ref} has this very package and is still being registered by run "
                f"{version.run_id}",
                hint="wait for that `keel train` to finish, then run this one again",
            )
        if retired_reason(project, version) is None:
            reason = f"its registration did not complete: {'; '.join(problems)}"
            project.metadata.audit.record(
                actor=project.settings.user,
                kind="model.retired",
                model=version.model,
                version=version.version,
                reason=reason,
                evidence={"run": version.run_id, "retired_by_run": run.id},
            )
            note = f"retired {version.ref} ({reason}); registering a complete version"
            notes.append(note)
            say("register", note)
    return None


def _announce(project: Workspace, result: TrainResult, say: Progress) -> TrainResult:
    """Complete the registration of the version this run registered, or of the version it
    found complete but never announced (its `keel train` was killed before this step): its
    `model.registered` event, and `candidate` unless a newer version holds it already."""
    from keel.domain.model import CANDIDATE, ModelVersion

    version: ModelVersion | None = result.registered
    if version is None and result.unchanged is not None:
        if _announced(project, result.unchanged):
            return result
        version = result.unchanged
    if version is None:
        return result
    holder = project.metadata.releases.holder(version.model, CANDIDATE)
    alias = CANDIDATE if holder is None or holder < version.version else None
    project.metadata.models.complete_registration(
        version.model, version.version, alias=alias, actor=project.settings.user
    )
    ref = version.ref
    if result.registered is None:
        note = f"completed the registration of {ref}"
        say("register", note)
        result = dataclasses.replace(result, notes=[*result.notes, note])
    if alias is not None:
        say("candidate", f"{ref} is the candidate")
    return result


def _announced(project: Workspace, version: Any) -> bool:
    events = project.metadata.audit.events(model=version.model, kinds=["model.registered"])
    return any(e.version == version.version for e in events)


def _versions(project: Workspace, name: str) -> list[Any]:
    from keel.errors import NotFound

    try:
        return list(project.metadata.models.versions(name))
    except NotFound:
        return []


def _step(
    project: Workspace,
    run: RunContext,
    name: str,
    key: str,
    force: bool,
    outcomes: list[StepOutcome],
    say: Progress,
    compute: Callable[[], bytes | Path],
    *,
    cache: bool = True,
) -> Digest:
    """Reuse the cached output of `key`, or compute, store and cache it (unless `cache` is
    false: the output is recorded in the run, the cache entry stays as it was)."""
    runs = project.metadata.runs
    started = time.perf_counter()
    cached = None if force else runs.find_cached_step(key)
    outcome: Literal["ran", "cache_hit"]
    if cached is not None and project.artifacts.exists(cached.output):
        output, outcome = cached.output, "cache_hit"
    else:
        produced = compute()
        if isinstance(produced, Path):
            try:
                record = project.put_artifact(produced)
            finally:
                # Producers write into a folder of their own (mkdtemp); it is done with.
                shutil.rmtree(produced.parent, ignore_errors=True)
        else:
            record = project.metadata.artifacts.record(
                project.artifacts.put_bytes(produced).digest,
                size=len(produced),
                media_type="application/json",
                actor=project.settings.user,
            )
        output, outcome = record.digest, "ran"
    seconds = time.perf_counter() - started
    runs.record_step(StepRecord(run.id, name, key, outcome, output, seconds, cache=cache))
    outcomes.append(StepOutcome(name, outcome, seconds, output, f"output {output.short}"))
    say(name, f"{'cache hit' if outcome == 'cache_hit' else 'ran'} in {seconds:.2f}s")
    return output


def _build_features(
    project: Workspace, table: Any, split: Any, target: str, code: CodeFingerprint
) -> Path:
    import numpy as np
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    from keel.code.entrypoints import load_entry_point
    from keel.code.usercode import check_features
    from keel.domain.times import table_to_pandas

    if target not in table.column_names:
        raise ConfigError(f"data.target: column '{target}' is not in the data")
    raw = table_to_pandas(table.select(_model_inputs(project, table)))
    build = load_entry_point(code.entry_point, project.settings.project_dir)
    built = check_features(build, build(raw), raw)
    out = pa.Table.from_pandas(built.reset_index(drop=True), preserve_index=False)
    holdout = np.zeros(len(raw), dtype=bool)
    holdout[split.holdout] = True
    training = np.zeros(len(raw), dtype=bool)
    training[split.train] = True
    out = (
        out.append_column(_TARGET, table[target])
        .append_column(_HOLDOUT, pa.array(holdout))
        .append_column(_TRAIN, pa.array(training))
    )
    path = Path(tempfile.mkdtemp(prefix="keel-features-")) / "features.parquet"
    pq.write_table(out, path, compression="zstd")
    return path


def _model_inputs(project: Workspace, table: Any) -> list[str]:
    """The raw columns the model takes: every column but the target and `data.exclude`."""
    data = project.spec.data
    assert data is not None  # require_pipeline holds it
    names: list[str] = data.model_inputs(table.column_names)
    return names


def _load_features(project: Workspace, digest: Digest) -> Any:
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    frame = pq.read_table(io.BytesIO(project.artifacts.read_bytes(digest))).to_pandas()
    return frame


def _train_package(
    project: Workspace,
    run: RunContext,
    features_digest: Digest,
    feature_code: CodeFingerprint,
    table: Any,
    target: str,
) -> Path:
    from keel.code.entrypoints import load_entry_point
    from keel.models import save_package
    from keel.models.formats import check_model
    from keel.models.signature import infer_inference_contract, model_outputs

    spec = project.spec
    assert spec.training is not None
    frame = _load_features(project, features_digest)
    # Features cached before the training mark existed: every row not held out trains.
    part = frame[frame[_TRAIN]] if _TRAIN in frame.columns else frame[~frame[_HOLDOUT]]
    x = part.drop(columns=[c for c in (_TARGET, _HOLDOUT, _TRAIN) if c in part.columns])
    y = part[_TARGET]
    fit = load_entry_point(spec.training.entry_point, project.settings.project_dir)
    model = check_model(fit, fit(run, x, y))
    outputs = model_outputs(model, y)
    raw_sample = table.select(_model_inputs(project, table)).slice(0, 10_000)
    # Requests are held to the data contract's ranges and domains too (serving.input_contract):
    # values training never saw are where feature code and models break.
    contract = infer_inference_contract(raw_sample, outputs).bounded_by(_data_contract(project))
    folder = Path(tempfile.mkdtemp(prefix="keel-package-"))
    return save_package(
        folder / "model.tar",
        model,
        project_dir=project.settings.project_dir,
        features=feature_code,
        contract=contract,
        metadata={"model": spec.name, "run": run.id},
        archive=True,
    )


def _data_contract(project: Workspace) -> Contract | None:
    from keel.contracts import read_contract

    data = project.spec.data
    if data is None or not data.contract:
        return None
    return read_contract(project.settings.project_dir / data.contract)


def _evaluate(project: Workspace, package: Digest, features_digest: Digest) -> bytes:
    from keel.metrics import evaluate
    from keel.models import load_package

    with tempfile.TemporaryDirectory(prefix="keel-eval-") as folder:
        path = Path(folder) / "model.tar"
        project.artifacts.get_file(package, path)
        loaded = load_package(path)
    frame = _load_features(project, features_digest)
    part = frame[frame[_HOLDOUT]]
    x = part.drop(columns=[c for c in (_TARGET, _HOLDOUT, _TRAIN) if c in part.columns])
    y = part[_TARGET].to_numpy()
    estimator = loaded.estimator
    scores = estimator.predict_proba(x)[:, 1] if hasattr(estimator, "predict_proba") else None
    values = evaluate(project.spec.metrics, y, y_pred=estimator.predict(x), y_score=scores)
    return json.dumps(values, sort_keys=True).encode()
