"""Model registry: register, set an alias, load by alias; keel against MLflow in one run.

    python benchmarks/registry.py [--registers 5] [--moves 200] [--loads 30] [--cold 3]
                                  [--no-file-store] [--json]

One fitted model for both tools: scikit-learn's HistGradientBoostingClassifier with the flights
example's settings (200 iterations, 31 leaves, seed 7), fitted on 10,000 raw rows of the
nycflights13 data (examples/flights/data), joined and featurised by the example's own code
(examples/flights/project/features.py: `prepare`, then `build`). Fitting stays outside every
timing. Each tool works in a fresh temp folder on the local disk, with its embedded database:

- keel: a project made by `Project.init` (SQLite at .keel/keel.db with `synchronous=FULL`,
  objects in .keel/artifacts, fsynced); keel.yaml `release: {gates: [], approvals: {required: 0}}`.
- MLflow: default settings: no tracking URI set (MLFLOW_TRACKING_URI is cleared), run from its
  folder. MLflow 3 then uses `sqlite:///mlflow.db` in the working directory for runs and the
  registry and `./mlruns` for artifacts. Extras: 3 registrations with `pip_requirements` given
  (which skips MLflow's requirement inference), and the three operations again on the file
  store (`file:<folder>/mlruns`, which MLflow 3 only opens with MLFLOW_ALLOW_FILE_STORE=true),
  with 2 registrations and no warm-up of its own.

The operations, each as its user writes it:
  register   keel: in a run (`project.start_run()`), `save_package` (skops estimator, the feature
             code, the inference contract; one tar), `Project.put_artifact`, and
             `metadata.models.register` (which also points `candidate` at it, with its audit
             event). MLflow: `with mlflow.start_run(): mlflow.sklearn.log_model(model,
             name=..., registered_model_name=...)` with default settings, plus the one argument
             a HistGradientBoosting model needs under MLflow's default format (skops):
             `skops_trusted_types=[...TreePredictor]`. Also shown: keel as `keel train`
             registers, which re-reads the stored package's manifest for its flavor and
             contract.
  set alias  keel: `metadata.releases.move_alias` (compare-and-set under the model-row lock, its
             hash-chained audit event in the same transaction), and the whole user path
             `keel.release.promote` with no gates. MLflow:
             `MlflowClient().set_registered_model_alias(name, "production", version)`.
             Versions alternate (1, 2, 1, ...) so every call moves the alias.
  load       keel: `metadata.models.resolve("name@production")` and `Project.load_model`
             (the package read from the store and verified by hash, its file digests checked,
             its skops types checked against keel's allow-list, the feature code imported
             from the package). Warm: the first load of the package in the open project (the
             project's kept packages are dropped before each repeat), and, as a row of its
             own, a repeat the open project answers from the packages it keeps (by content
             digest, so never stale: what a server pays to switch back on rollback). MLflow:
             `mlflow.sklearn.load_model("models:/name@production")` (the sklearn flavor),
             repeated in this process. Cold: the first load in a fresh process, timed after
             `import mlflow` / `from keel.project import Project` (imports shown apart).

One untimed warm-up of each operation first (imports, the registered model's first row).
Timings are wall-clock medians and p90 (nearest rank) over the repeats. Child processes (the
cold loads, and the one MLflow starts to infer pip requirements) keep their bytecode in a temp
cache (PYTHONPYCACHEPREFIX), as an installed package has it; an untimed first process fills it.
Telemetry is off (MLFLOW_DISABLE_TELEMETRY, DO_NOT_TRACK); the folders are outside any git
repository. After timing, both loaded models must predict the fitted model's probabilities.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Before MLflow is imported: no telemetry, no network.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

from common import machine_summary

TARGET = 10.0  # times MLflow, from the issue
FILE_STORE_REGISTERS = 2  # MLflow's file store is an extra; its registrations cost seconds
PINNED_REGISTERS = 3  # MLflow registrations with pip_requirements given, an extra
MODEL = "flights-delay"
ALIAS = "production"
ROWS = 10_000
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "flights"
ENV = {"KEEL_USER": "bench"}
#: What MLflow's default format (skops) must be told to trust to store this model.
TRUSTED = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
KEEL_SPEC = f"""\
version: 1
name: {MODEL}
release:
  gates: []
  approvals: {{required: 0}}
"""

Timings = dict[str, list[float]]


# --- the model ---------------------------------------------------------------------------------


def fit_model() -> tuple[Any, Any, Any]:
    """(fitted model, raw rows without the label, their features), from the example's code."""
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier

    from keel.data import read_table

    spec = importlib.util.spec_from_file_location(
        "_keel_bench_features", EXAMPLE / "project" / "features.py"
    )
    assert spec is not None and spec.loader is not None
    features = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(features)
    flights = read_table(EXAMPLE / "data" / "nycflights13_flights.csv.gz").to_pandas()
    weather = read_table(EXAMPLE / "data" / "nycflights13_weather.csv.gz").to_pandas()
    raw = features.prepare(flights, weather).sample(ROWS, random_state=0)
    raw = raw.sort_values("time_hour").reset_index(drop=True)
    label = raw.pop("late")
    x = features.build(raw)
    model = HistGradientBoostingClassifier(
        max_iter=200, learning_rate=0.1, max_leaf_nodes=31, early_stopping=False, random_state=7
    ).fit(x, label)
    assert isinstance(raw, pd.DataFrame)
    return model, raw, x


# --- timing ------------------------------------------------------------------------------------


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    # Nearest-rank p90: with 5 samples it is the largest, with 200 the 180th.
    p90 = ordered[max(0, -(-9 * len(ordered) // 10) - 1)]
    return {"median": statistics.median(ordered), "p90": p90, "n": len(ordered)}


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """MLflow prints "Registered model ..." to stderr on each registration."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        yield


# --- keel --------------------------------------------------------------------------------------


def keel_bench(
    folder: Path, model: Any, raw: Any, expected: Any, args: argparse.Namespace
) -> Timings:
    from keel.code.entrypoints import entry_point_source
    from keel.domain.identity import Actor
    from keel.models import infer_inference_contract, save_package
    from keel.models.package import package_manifest
    from keel.models.signing import sign_version
    from keel.project import Project
    from keel.release import promote

    project_dir = folder / "project"
    Project.init(project_dir, name=MODEL, env=ENV).close()
    (project_dir / "keel.yaml").write_text(KEEL_SPEC)
    shutil.copy(EXAMPLE / "project" / "features.py", project_dir / "features.py")
    scratch = folder / "scratch"  # package folders and restored files; same disk as the store
    scratch.mkdir()
    # What `keel train` has at hand when it packages a model: the feature code's fingerprint
    # and the inference contract inferred from raw rows.
    code = entry_point_source("features:build", project_dir)
    contract = infer_inference_contract(raw, {"prediction": "integer", "probability": "float"})
    metrics = {"roc_auc": 0.72, "log_loss": 0.5}
    timings: Timings = {}

    def add(name: str, seconds: float) -> None:
        timings.setdefault(name, []).append(seconds)

    with Project.open(project_dir, env=ENV) as project:
        signer = project.keys.signer()

        def register(*, reread: bool = False) -> None:
            """One registration; its parts are timed too, to show where the time goes."""
            t0 = time.perf_counter()
            with project.start_run(tags={"keel.step": "bench"}) as run:
                t1 = time.perf_counter()
                package_dir = Path(tempfile.mkdtemp(prefix="keel-package-", dir=scratch))
                path = save_package(
                    package_dir / "model.tar",
                    model,
                    project_dir=project_dir,
                    features=code,
                    contract=contract,
                    metadata={"model": MODEL, "run": run.id},
                    archive=True,
                )
                t2 = time.perf_counter()
                record = project.put_artifact(path)
                shutil.rmtree(package_dir)
                t3 = time.perf_counter()
                flavor, stored = "sklearn", contract.to_dict()
                if reread:  # as `keel train`'s register step: flavor and contract from the store
                    manifest = restore_manifest(record.digest)
                    flavor = manifest["flavor"]
                    stored = manifest["inference_contract"] or {}
                t4 = time.perf_counter()
                version = project.metadata.models.register(
                    MODEL,
                    run_id=run.id,
                    package=record.digest,
                    flavor=flavor,
                    inference_contract=stored,
                    metrics=metrics,
                    actor=project.settings.user,
                    # As `keel train` registers: signed, or no load would accept it.
                    sign=lambda registered: sign_version(signer, registered),
                )
                run.set_tag("keel.model", version.ref)
                t5 = time.perf_counter()
            t6 = time.perf_counter()
            if not reread:
                add("register.run_start", t1 - t0)
                add("register.save_package", t2 - t1)
                add("register.put_artifact", t3 - t2)
                add("register.register", t5 - t4)
                add("register.run_finish", t6 - t5)
            else:
                add("register_train.reread", t4 - t3)

        def restore_manifest(digest: Any) -> Any:
            with tempfile.TemporaryDirectory(prefix="keel-load-", dir=scratch) as tmp:
                path = Path(tmp) / "model.tar"
                project.artifacts.get_file(digest, path)
                return package_manifest(path)

        def load(*, kept: bool = False) -> Any:
            """Resolve the alias and load its version: the first time in the open project
            (fetched, verified, loaded), or `kept` by it from an earlier load."""
            if not kept:
                project.forget_loaded_models()
            t0 = time.perf_counter()
            version = project.metadata.models.resolve(f"{MODEL}@{ALIAS}")
            t1 = time.perf_counter()
            loaded = project.load_model(version)
            t2 = time.perf_counter()
            if not kept:
                add("load.resolve", t1 - t0)
                add("load.load_model", t2 - t1)
            return loaded

        register()  # warm-up: version 1
        timings.clear()
        for _ in range(args.registers):
            add("register", timed(register))
        for _ in range(args.registers):
            add("register_train", timed(lambda: register(reread=True)))

        releases = project.metadata.releases
        releases.move_alias(MODEL, ALIAS, 1, expected_holder=None, actor="bench", reason="warm")
        holder = 1
        for _ in range(args.moves):
            target = 2 if holder == 1 else 1
            add(
                "set_alias",
                timed(
                    lambda t=target, h=holder: releases.move_alias(
                        MODEL, ALIAS, t, expected_holder=h, actor="bench", reason="benchmark"
                    )
                ),
            )
            holder = target
        actor = Actor("bench")
        for _ in range(args.moves):
            target = 2 if holder == 1 else 1
            outcome: list[str] = []
            add(
                "promote",
                timed(
                    lambda t=target, o=outcome: o.append(
                        promote(project, f"{MODEL}@{t}", ALIAS, actor=actor).outcome
                    )
                ),
            )
            assert outcome == ["promoted"], outcome
            holder = target
        assert releases.holder(MODEL, ALIAS) == holder

        load()  # warm-up
        for name in [k for k in timings if k.startswith("load.")]:
            del timings[name]
        loaded: list[Any] = []
        for _ in range(args.loads):
            add("load", timed(lambda: loaded.append(load())))
            loaded.clear()  # the unpacked package folder goes with the model
        load(kept=True)
        for _ in range(args.loads):
            add("load_kept", timed(lambda: load(kept=True)))
        last = load()
        assert last.metadata["model"] == MODEL
        assert len(project.metadata.models.versions(MODEL)) == 1 + 2 * args.registers
        check_same(last.predict_proba(raw.head(len(expected))), expected, "keel")
    return timings


# --- MLflow ------------------------------------------------------------------------------------


def mlflow_bench(
    folder: Path, model: Any, x: Any, expected: Any, args: argparse.Namespace, uri: str | None
) -> Timings:
    """MLflow in `folder` (its cwd); `uri` None keeps MLflow's default tracking URI.

    The default pass starts with one untimed registration (MLflow's imports, the registered
    model's creation); the file-store pass runs in the same, already warm process, so it
    registers fewer times and without a warm-up.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    os.chdir(folder)  # the default tracking URI, sqlite:///mlflow.db, is relative to it
    if uri is not None:
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
    timings: Timings = {"register": [], "log_model": [], "set_alias": [], "load": []}

    def register(**options: Any) -> None:
        with mlflow.start_run():
            started = time.perf_counter()
            mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name=MODEL,
                skops_trusted_types=TRUSTED,
                **options,
            )
            if not options:
                timings["log_model"].append(time.perf_counter() - started)

    with quiet():
        if uri is None:
            register()  # warm-up: version 1 (and the registered model)
            timings["log_model"].clear()
        for _ in range(args.registers if uri is None else FILE_STORE_REGISTERS):
            timings["register"].append(timed(register))
        if uri is None:
            # Not default settings: requirements given, so MLflow does not infer them.
            pinned = pinned_requirements()
            timings["register_pinned"] = [
                timed(lambda: register(pip_requirements=pinned)) for _ in range(PINNED_REGISTERS)
            ]
    client = MlflowClient()
    client.set_registered_model_alias(MODEL, ALIAS, "1")
    holder = 1
    for _ in range(args.moves):
        target = 2 if holder == 1 else 1
        timings["set_alias"].append(
            timed(lambda t=target: client.set_registered_model_alias(MODEL, ALIAS, str(t)))
        )
        holder = target
    assert str(client.get_model_version_by_alias(MODEL, ALIAS).version) == str(holder)

    def load() -> Any:
        return mlflow.sklearn.load_model(f"models:/{MODEL}@{ALIAS}")

    with quiet():
        load()  # warm-up
        for _ in range(args.loads):
            timings["load"].append(timed(load))
        last = load()
    check_same(last.predict_proba(x.head(len(expected))), expected, "mlflow")
    return timings


def check_same(probabilities: Any, expected: Any, tool: str) -> None:
    import numpy as np

    if not np.allclose(probabilities, expected):
        raise AssertionError(f"{tool}: the loaded model predicts differently from the fitted one")


def pinned_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "skops")]


def mlflow_uri() -> str:
    import mlflow

    return str(mlflow.get_tracking_uri())


# --- cold loads, each in a fresh process -------------------------------------------------------

KEEL_COLD = """
import sys, tempfile, time
from pathlib import Path
started = time.perf_counter()
from keel.project import Project
imported = time.perf_counter()
with Project.open(sys.argv[1], env={"KEEL_USER": "bench"}) as project:
    version = project.metadata.models.resolve(sys.argv[2])
    model = project.load_model(version)
    loaded = time.perf_counter()
print(imported - started, loaded - imported)
"""

MLFLOW_COLD = """
import logging, sys, time
started = time.perf_counter()
import mlflow
imported = time.perf_counter()
logging.getLogger("mlflow").setLevel(logging.ERROR)
model = mlflow.sklearn.load_model(sys.argv[1])
loaded = time.perf_counter()
print(imported - started, loaded - imported)
"""


def cold_loads(code: str, argv: list[str], cwd: Path, repeat: int) -> Timings:
    """Fresh processes; the first, untimed, fills the bytecode cache (PYTHONPYCACHEPREFIX)."""
    timings: Timings = {"import": [], "load": []}
    # mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI: the file-store pass set it.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    }
    env["PYTHONWARNINGS"] = "ignore"
    for attempt in range(repeat + 1):
        done = subprocess.run(
            [sys.executable, "-c", code, *argv],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        if done.returncode != 0:
            raise RuntimeError(f"a cold load failed in {cwd}:\n{done.stderr[-3000:]}")
        if attempt == 0:
            continue
        imported, loaded = (float(v) for v in done.stdout.split())
        timings["import"].append(imported)
        timings["load"].append(loaded)
    return timings


# --- report ------------------------------------------------------------------------------------

ROWS_SHOWN = [
    # (label, keel key, mlflow key, mlflow run)
    ("register (save, store, register, in a run)", "register", "register", "mlflow"),
    ("register as `keel train` does (+ manifest re-read)", "register_train", "register", "mlflow"),
    ("set alias: move_alias vs set_registered_model_alias", "set_alias", "set_alias", "mlflow"),
    ("set alias: promote, no gates (full user path)", "promote", "set_alias", "mlflow"),
    ("load by alias, warm (first load in the open project)", "load", "load", "mlflow"),
    ("load by alias, kept by the open project (repeat)", "load_kept", "load", "mlflow"),
    ("load by alias, cold (first in a fresh process)", "cold_load", "cold_load", "mlflow"),
    (
        "extra, MLflow with pip_requirements given: register",
        "register",
        "register_pinned",
        "mlflow",
    ),
    ("extra, MLflow file store: register", "register", "register", "mlflow_file"),
    ("extra, MLflow file store: set alias", "set_alias", "set_alias", "mlflow_file"),
    ("extra, MLflow file store: load warm", "load", "load", "mlflow_file"),
]


def milliseconds(value: float) -> str:
    ms = value * 1000
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.1f} ms" if ms >= 1 else f"{ms:.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--registers", type=int, default=5, help="timed registrations per tool")
    parser.add_argument("--moves", type=int, default=200, help="timed alias moves per tool")
    parser.add_argument("--loads", type=int, default=30, help="timed warm loads per tool")
    parser.add_argument("--cold", type=int, default=3, help="fresh processes per tool")
    parser.add_argument("--no-file-store", action="store_true", help="skip MLflow's file store")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)

    warnings.filterwarnings("ignore")  # MLflow's and skops' chatter is not a result
    started = time.perf_counter()
    print("fitting the model...", file=sys.stderr, flush=True)
    model, raw, x = fit_model()
    expected = model.predict_proba(x.head(500))
    fit_seconds = time.perf_counter() - started

    results: dict[str, Timings] = {}
    cwd = Path.cwd()
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="keel-bench-registry-") as tmp:
        root = Path(tmp)
        # MLflow's defaults, whatever this shell sets. Child processes (MLflow's requirement
        # inference, the cold loads) keep their bytecode in a cache, as an installed package
        # does, even where PYTHONDONTWRITEBYTECODE is set.
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "PYTHONDONTWRITEBYTECODE"):
            os.environ.pop(name, None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
        try:
            for name in ("keel", "mlflow", "mlflow_file"):
                (root / name).mkdir()
            print("keel...", file=sys.stderr, flush=True)
            results["keel"] = keel_bench(root / "keel", model, raw, expected, args)
            print("mlflow (default: sqlite)...", file=sys.stderr, flush=True)
            results["mlflow"] = mlflow_bench(root / "mlflow", model, x, expected, args, None)
            default_uri = mlflow_uri()
            if not args.no_file_store:
                print("mlflow (file store)...", file=sys.stderr, flush=True)
                # MLflow 3 refuses its file store unless asked for it.
                os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
                file_uri = f"file:{root / 'mlflow_file' / 'mlruns'}"
                results["mlflow_file"] = mlflow_bench(
                    root / "mlflow_file", model, x, expected, args, file_uri
                )
                del os.environ["MLFLOW_ALLOW_FILE_STORE"]
            os.chdir(cwd)
            print("cold loads...", file=sys.stderr, flush=True)
            results["keel"].update(
                {
                    f"cold_{k}": v
                    for k, v in cold_loads(
                        KEEL_COLD,
                        [str(root / "keel" / "project"), f"{MODEL}@{ALIAS}"],
                        root,
                        args.cold,
                    ).items()
                }
            )
            results["mlflow"].update(
                {
                    f"cold_{k}": v
                    for k, v in cold_loads(
                        MLFLOW_COLD, [f"models:/{MODEL}@{ALIAS}"], root / "mlflow", args.cold
                    ).items()
                }
            )
        finally:
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(saved)
    total = time.perf_counter() - started

    import mlflow
    import sklearn
    import skops

    machine = machine_summary(
        f"mlflow {mlflow.__version__}",
        f"scikit-learn {sklearn.__version__}",
        f"skops {skops.__version__}",
    )
    stats = {tool: {k: summary(v) for k, v in t.items()} for tool, t in results.items()}
    table = []
    for label, keel_key, peer_key, peer in ROWS_SHOWN:
        if peer not in stats:
            continue
        k, m = stats["keel"][keel_key], stats[peer][peer_key]
        ratio = m["median"] / k["median"]
        table.append({"operation": label, "keel": k, "mlflow": m, "ratio": ratio})
    print(f"machine: {machine}")
    print(
        f"model: HistGradientBoostingClassifier, 200 iterations x 31 leaves, fitted on {ROWS:,} "
        f"flights rows; MLflow default tracking URI: {default_uri}; total {total:.0f} s "
        f"(fitting {fit_seconds:.0f} s)\n"
    )
    print(
        "| operation | keel median | keel p90 | MLflow median | MLflow p90 | MLflow / keel | "
        f"{TARGET:g}x? |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | :-: |")
    for row in table:
        k, m = row["keel"], row["mlflow"]
        met = "yes" if row["ratio"] >= TARGET else "no"
        print(
            f"| {row['operation']} | {milliseconds(k['median'])} | {milliseconds(k['p90'])} "
            f"| {milliseconds(m['median'])} | {milliseconds(m['p90'])} | {row['ratio']:,.1f}x "
            f"| {met} |"
        )
    keel = stats["keel"]
    print("\nrepeats: keel", {k: v["n"] for k, v in keel.items() if "." not in k})
    print("repeats: mlflow", {k: v["n"] for k, v in stats["mlflow"].items()})
    print("\nwhere keel's time goes (medians):")
    for prefix in ("register.", "register_train.", "load."):
        parts = [
            f"{k[len(prefix) :]} {milliseconds(v['median'])}"
            for k, v in keel.items()
            if k.startswith(prefix)
        ]
        print(f"  {prefix[:-1]}: {', '.join(parts)}")
    print(
        f"  MLflow log_model alone: {milliseconds(stats['mlflow']['log_model']['median'])}; "
        f"imports before a cold load: keel {milliseconds(keel['cold_import']['median'])}, "
        f"MLflow {milliseconds(stats['mlflow']['cold_import']['median'])}"
    )
    if args.json:
        document = {"machine": machine, "target": TARGET, "table": table, "stats": stats}
        print(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
