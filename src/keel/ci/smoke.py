"""`keel smoke-test`: does the project's pipeline still train, end to end, on a small sample?

What a pull request needs to know before anyone trains for real: the feature and training
code run on the configured data, the metrics come out, the model survives its package, and it
answers requests in its inference contract. Everything happens in a throwaway store (a
temporary folder, removed afterwards): the project's registry, metadata and artifacts are
never opened.

Each step is a JUnit testcase; a failed step names the problem and skips the steps that need
its output:

    sample      the configured data source, snapshotted and sampled (rows, seeded)
    contract    the sample against data.contract's row-level rules (types, nulls where none
                are allowed, ranges, categories, keys; the rules about the whole data are
                `keel contract check`'s)
    features    the split and the feature code: one feature row per raw row
    train       the training code returns a fitted model
    metrics     every metric of keel.yaml, finite, computed on the holdout
    package     save -> load (verified by hash) gives identical predictions
    inference   the loaded package answers sample rows in its inference contract
                (the checks of `keel contract-test`)
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from keel.domain.times import table_to_pandas
from keel.errors import ConfigError, KeelError, UserCodeError
from keel.reports.junit import JUnitCase, JUnitSuite

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["DEFAULT_ROWS", "SmokeResult", "smoke_test"]

DEFAULT_ROWS: Final = 2_000
CLASSNAME: Final = "keel.smoke"
#: Contract rules about the whole data, which a random sample breaks without the data breaking
#: them (fewer rows, more nulls by chance, the newest row not drawn): `keel contract check`
#: tests them on all of it, so the smoke test checks the row-level rules only.
_POPULATION_RULES: Final = frozenset({"row_count", "null_rate", "stale"})


@dataclass(frozen=True)
class SmokeResult:
    rows: int
    suite: JUnitSuite
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.suite.ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rows": self.rows,
            "metrics": self.metrics,
            "steps": [
                {
                    "name": case.name,
                    "status": case.status,
                    "seconds": round(case.seconds, 3),
                    "message": case.failure or case.skipped or case.output,
                    "details": case.details,
                }
                for case in self.suite.cases
            ],
        }


class _StepFailed(Exception):
    """A step said no; its message is the testcase's failure."""


class _Steps:
    """Runs steps in order; after a failure, the rest are recorded as skipped."""

    def __init__(self) -> None:
        self.cases: list[JUnitCase] = []
        self.failed: str | None = None

    def run(self, name: str, step: Callable[[], tuple[Any, str]]) -> Any:
        if self.failed is not None:
            self.cases.append(
                JUnitCase(name, CLASSNAME, skipped=f"not run: step '{self.failed}' failed")
            )
            return None
        started = time.perf_counter()
        try:
            with _one_thread():
                value, note = step()
        except Exception as exc:  # noqa: BLE001 - user code may raise anything; it is the finding
            self.failed = name
            message, details = _describe(exc)
            self.cases.append(
                JUnitCase(
                    name,
                    CLASSNAME,
                    time.perf_counter() - started,
                    failure=message,
                    failure_type="check" if isinstance(exc, _StepFailed) else type(exc).__name__,
                    details=details,
                )
            )
            return None
        self.cases.append(JUnitCase(name, CLASSNAME, time.perf_counter() - started, output=note))
        return value


def _describe(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, _StepFailed):
        message = str(exc)
        return message.splitlines()[0], message
    if isinstance(exc, KeelError):
        details = exc.message + (f"\nhint: {exc.hint}" if exc.hint else "")
        if isinstance(exc, UserCodeError) and exc.__cause__ is not None:
            # The user's code raised: the last frames of its traceback show the way there.
            details += "\n" + "".join(traceback.format_exception(exc.__cause__)[-6:])
        return exc.message.splitlines()[0], details
    # The user's code failed: the last frames say where.
    frames = "".join(traceback.format_exception(exc)[-6:])
    return f"{type(exc).__name__}: {exc}".splitlines()[0], frames


def _require(project: Workspace) -> tuple[Any, Any, Any, str]:
    from keel.pipeline.train import require_pipeline

    return require_pipeline(project, "the smoke test, which trains the pipeline,")


def throwaway_project(project: Workspace, folder: Path) -> Workspace:
    """A project with `project`'s spec whose stores live in `folder` (nothing is shared)."""
    from keel.settings import Settings
    from keel.workspace import Workspace

    settings = Settings(
        project_dir=folder,
        db_url=f"sqlite:///{folder / 'keel.db'}",
        artifacts_url=str(folder / "artifacts"),
        user=project.settings.user,
        openlineage=str(folder / "lineage.jsonl"),
    )
    return Workspace(settings, project.spec)


def _absolute_source(project: Workspace) -> Any:
    """data.source made absolute against the project folder (the throwaway project sits
    elsewhere)."""
    from keel.spec import SqlSource

    assert project.spec.data is not None
    source = project.spec.data.source
    base = project.settings.project_dir
    if isinstance(source, SqlSource):
        prefix = "sqlite:///"
        relative = source.url[len(prefix) :]
        local = source.url.startswith(prefix) and relative not in {"", ":memory:"}
        if local and not relative.startswith("/"):
            return source.model_copy(update={"url": prefix + str(base / relative)})
        return source
    path = Path(source).expanduser()
    return str(path if path.is_absolute() else base / path)


def smoke_test(project: Workspace, *, rows: int = DEFAULT_ROWS) -> SmokeResult:
    """Train the pipeline on `rows` sampled rows in a throwaway store; see the module docstring."""
    if rows < 20:
        raise ConfigError(
            f"--rows: a smoke test needs at least 20 rows to split and train, got {rows}",
            problems=[("--rows", "at least 20")],
        )
    _require(project)
    with tempfile.TemporaryDirectory(prefix="keel-smoke-") as folder:
        scratch = throwaway_project(project, Path(folder))
        try:
            return _SmokeRun(project, scratch, Path(folder), rows).run()
        finally:
            scratch.close()


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One OpenMP/BLAS thread while a step runs: thread teams gain nothing on a few thousand
    rows, and on a busy runner their spin-waiting made training 15 times slower (measured:
    scikit-learn's HistGradientBoosting on 2 shared cores). Like any threadpoolctl limit, it
    applies to the libraries loaded when it is entered."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # no scikit-learn: nothing uses OpenMP
        yield
        return
    with threadpool_limits(limits=1):
        yield


class _SmokeRun:
    """One smoke test: each step is a method that reads what the earlier ones left on `self`
    and returns (value, note); `run` calls them in order through `_Steps`."""

    def __init__(self, project: Workspace, scratch: Workspace, folder: Path, rows: int) -> None:
        self.data, self.features_spec, self.training, self.target = _require(project)
        self.project = project
        self.project_dir = project.settings.project_dir
        self.scratch = scratch
        self.folder = folder
        self.rows = rows
        self.started_at = datetime.now(UTC)
        self.table: Any = None  # pyarrow Table of the sample
        self.raw: Any = None  # its raw input columns (pandas), and its labels (numpy)
        self.labels: Any = None
        self.split: Any = None
        self.code: Any = None  # the feature code's fingerprint
        self.built: Any = None  # the features (pandas)
        self.model: Any = None
        self.loaded: Any = None  # the model, saved and loaded back as a package
        self.contract: Any = None  # its inference contract

    def run(self) -> SmokeResult:
        steps = _Steps()
        steps.run("sample", self.sample)
        if self.data.contract:
            steps.run("contract", self.check_contract)
        else:
            steps.cases.append(
                JUnitCase("contract", CLASSNAME, skipped="keel.yaml has no data.contract")
            )
        steps.run("features", self.build_features)
        steps.run("train", self.train)
        scores = steps.run("metrics", self.evaluate)
        steps.run("package", self.package)
        if steps.failed is None:
            with _one_thread():
                steps.cases.extend(self.inference())
        else:
            steps.run("inference", lambda: (None, ""))  # recorded as skipped
        suite = JUnitSuite(
            f"keel smoke-test {self.project.spec.name}",
            steps.cases,
            timestamp=self.started_at,
            properties={"rows": str(self.rows)},
        )
        rows = 0 if self.table is None else self.table.num_rows
        return SmokeResult(rows, suite, scores or {})

    def sample(self) -> tuple[None, str]:
        import numpy as np

        from keel.data.snapshot import load_table, snapshot

        version = snapshot(self.scratch, _absolute_source(self.project)).version
        table = load_table(self.scratch, version.id)
        if table.num_rows > self.rows:
            draw = np.random.default_rng(self.training.seed)
            chosen = draw.choice(table.num_rows, self.rows, replace=False)
            table = table.take(np.sort(chosen))  # keeps the source's order (a time split)
        if self.target not in table.column_names:
            raise _StepFailed(
                f"data.target: column '{self.target}' is not in the data "
                f"(columns: {', '.join(table.column_names)})"
            )
        self.table = table
        return None, f"{table.num_rows:,} of {version.rows:,} rows of {version.source}"

    def check_contract(self) -> tuple[None, str]:
        from keel.contracts import check_contract, read_contract

        path = self.data.contract
        report = check_contract(
            self.table, read_contract(self.project_dir / path), now=self.started_at
        )
        errors = [v for v in report.errors if v.rule not in _POPULATION_RULES]
        if errors:
            lines = [f"{v.rule} on {v.column or 'the table'}: {v.message}" for v in errors]
            raise _StepFailed(
                f"the sample broke the contract {path}: {lines[0]}\n" + "\n".join(lines[1:])
            )
        checked = sum(r.rule not in _POPULATION_RULES for r in report.results)
        return None, f"{path}: {checked} row-level checks on {report.rows:,} rows"

    def build_features(self) -> tuple[None, str]:
        from keel.code.entrypoints import entry_point_source, load_entry_point
        from keel.code.usercode import check_features
        from keel.pipeline.split import split_rows

        split_spec = self.training.split
        split = split_rows(
            self.table,
            method=split_spec.method,
            holdout=split_spec.holdout,
            timestamp=self.data.timestamp,
            seed=split_spec.seed,
            window=self.project.spec.retraining.training_window,
        )
        if split.train.size == 0 or split.holdout.size == 0:
            raise _StepFailed(
                f"the split left {split.train.size} training and {split.holdout.size} "
                "holdout rows; both must be non-empty (try more --rows)"
            )
        entry_point = self.features_spec.entry_point
        raw = table_to_pandas(self.table.select(self.data.model_inputs(self.table.column_names)))
        self.code = entry_point_source(entry_point, self.project_dir)
        build = load_entry_point(entry_point, self.project_dir)
        built = check_features(build, build(raw), raw)
        self.raw, self.split, self.built = raw, split, built.reset_index(drop=True)
        self.labels = self.table.column(self.target).to_numpy()
        return None, (
            f"{len(built.columns)} features; {split.train.size:,} training rows, "
            f"{split.holdout.size:,} holdout rows"
        )

    def train(self) -> tuple[None, str]:
        import pandas as pd  # type: ignore[import-untyped,unused-ignore]

        from keel.code.entrypoints import load_entry_point
        from keel.models.formats import check_model

        entry_point = self.training.entry_point
        fit = load_entry_point(entry_point, self.project_dir)
        rows = self.split.train
        with (
            self.scratch.start_run(
                params=dict(self.training.params),
                seed=self.training.seed,
                tags={"keel.step": "smoke-test"},
            ) as run,
            _one_thread(),  # again: the training code has loaded its libraries now
        ):
            model = fit(run, self.built.iloc[rows], pd.Series(self.labels[rows], name=self.target))
        self.model = check_model(fit, model)
        return None, type(model).__name__

    def evaluate(self) -> tuple[dict[str, float], str]:
        from keel.metrics import evaluate

        holdout, model = self.split.holdout, self.model
        x = self.built.iloc[holdout]
        scores = model.predict_proba(x)[:, 1] if hasattr(model, "predict_proba") else None
        values = evaluate(
            self.project.spec.metrics,
            self.labels[holdout],
            y_pred=model.predict(x),
            y_score=scores,
        )
        bad = [f"{name} = {value}" for name, value in values.items() if not math.isfinite(value)]
        if bad:
            raise _StepFailed(f"metrics that are not finite numbers: {', '.join(bad)}")
        shown = ", ".join(f"{name} {value:.4f}" for name, value in values.items())
        return values, f"on {holdout.size:,} holdout rows: {shown or 'no metrics configured'}"

    def package(self) -> tuple[None, str]:
        import numpy as np

        from keel.models import load_package, save_package
        from keel.models.package import package_digest
        from keel.models.signature import infer_inference_contract, model_outputs

        model = self.model
        self.contract = infer_inference_contract(self.raw, model_outputs(model, self.labels))
        (self.folder / "package").mkdir()
        path = save_package(
            self.folder / "package" / "model.tar",
            model,
            project_dir=self.project_dir,
            features=self.code,
            contract=self.contract,
            metadata={"model": self.project.spec.name, "smoke_test": True},
            archive=True,
        )
        loaded = load_package(path, package_digest(path))
        raw = self.raw.iloc[self.split.holdout].reset_index(drop=True)
        x = self.built.iloc[self.split.holdout]
        before, after = np.asarray(model.predict(x)), np.asarray(loaded.predict(raw))
        if before.shape != after.shape or not np.array_equal(before, after):
            differ = int((before != after).sum()) if before.shape == after.shape else len(before)
            raise _StepFailed(
                f"the loaded package predicts differently from the trained model on {differ} "
                f"of {len(before)} holdout rows: the packaged feature code or estimator does "
                "not reproduce training"
            )
        if hasattr(model, "predict_proba") and not np.array_equal(
            model.predict_proba(x), loaded.predict_proba(raw)
        ):
            raise _StepFailed("the loaded package's probabilities differ from the trained model's")
        self.loaded = loaded
        size = path.stat().st_size
        return None, f"{size / 1e6:.1f} MB package, {len(before):,} identical predictions"

    def inference(self) -> list[JUnitCase]:
        """The checks of `keel contract-test`, on the loaded package and holdout rows."""
        from keel.ci.contract_test import check_answers, local_sender, request_records
        from keel.serving.slots import ServedVersion

        served = ServedVersion(
            model=self.project.spec.name,
            version=1,
            package=self.loaded.digest,
            flavor=str(self.loaded.flavor),
            contract=self.contract,
            loaded=self.loaded,
            loaded_at=datetime.now(UTC),
            load_seconds=0.0,
        )
        holdout = self.raw.iloc[self.split.holdout].head(100)
        records = request_records(holdout, self.contract)
        send = local_sender(served, max_rows=self.project.spec.serving.max_rows)
        return check_answers(self.contract, send, records, prefix="inference: ")
