"""Command start-up with and without compiled bytecode, on a machine that sets
PYTHONDONTWRITEBYTECODE (as many container images and CI runners do).

    python benchmarks/startup.py [--repeat 5] [--command "models list"]

Every keel command imports keel and its libraries. Without bytecode on disk, and with Python
told not to write any, each command compiles every module it imports from source, every time.
`scripts/setup` compiles the environment at install (`uv pip install --compile-bytecode` and
`compileall` over site-packages and the editable checkout), so this measures what it saves:

  1. without bytecode: PYTHONPYCACHEPREFIX points at an empty folder, so Python finds no
     bytecode anywhere and, with PYTHONDONTWRITEBYTECODE=1, writes none;
  2. with bytecode: the environment's own `__pycache__` folders, as scripts/setup leaves them
     (the script compiles them first, so the second case never measures a first compilation).

Both run `keel COMMAND` as a subprocess (the interpreter of this environment) in a fresh project
with one registered model version, and print the median wall-clock seconds of --repeat runs.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shlex
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

KEEL = [sys.executable, "-c", "from keel.cli.main import run; run()"]


def _project(folder: Path) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    spec = (
        "name: startup\n"
        "data: {source: raw.parquet, target: label}\n"
        'features: {entry_point: "features:build"}\n'
        'training: {entry_point: "train:train", split: {method: random}}\n'
        "metrics: [roc_auc]\n"
    )
    subprocess.run([*KEEL, "init"], cwd=folder, check=True, capture_output=True, env=_env())
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    pq.write_table(pa.table({"x": x, "label": (x > 0).astype("int64")}), folder / "raw.parquet")
    (folder / "keel.yaml").write_text(spec)
    (folder / "features.py").write_text("def build(raw):\n    return raw[['x']]\n")
    (folder / "train.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n\n\n"
        "def train(ctx, features, target):\n"
        "    return LogisticRegression().fit(features, target)\n"
    )
    subprocess.run([*KEEL, "train"], cwd=folder, check=True, capture_output=True, env=_env())


def _env(prefix: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(PYTHONDONTWRITEBYTECODE="1", KEEL_USER="bench")
    env.pop("PYTHONPYCACHEPREFIX", None)
    if prefix is not None:
        env["PYTHONPYCACHEPREFIX"] = str(prefix)
    return env


def _median_seconds(command: list[str], folder: Path, env: dict[str, str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, cwd=folder, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--command", default="models list")
    args = parser.parse_args()
    import keel

    site = Path(sysconfig.get_paths()["purelib"])
    print(f"compiling {site} and {Path(keel.__file__).parent} (as scripts/setup does) ...")
    for folder in (site, Path(keel.__file__).parent):
        compileall.compile_dir(folder, quiet=2, workers=0)
    command = [*KEEL, *shlex.split(args.command)]
    with tempfile.TemporaryDirectory(prefix="keel-startup-") as scratch:
        project, empty = Path(scratch) / "project", Path(scratch) / "no-bytecode"
        project.mkdir()
        empty.mkdir()
        _project(project)
        without = _median_seconds(command, project, _env(empty), args.repeat)
        with_bytecode = _median_seconds(command, project, _env(), args.repeat)
    print(f"keel {args.command}, PYTHONDONTWRITEBYTECODE=1, median of {args.repeat}:")
    print(f"  without bytecode  {without:6.2f} s")
    print(f"  with bytecode     {with_bytecode:6.2f} s  ({without / with_bytecode:.1f}x faster)")


if __name__ == "__main__":
    main()
