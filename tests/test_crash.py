"""A put killed with SIGKILL half-way leaves nothing visible: no object, no metadata row."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from keel.project import Project

pytestmark = [pytest.mark.slow, pytest.mark.load]


def _keel(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keel", "-C", str(project), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "KEEL_USER": "ana"},
        check=False,
    )


def test_sigkill_during_put_leaves_no_object_and_no_row(tmp_path: Path) -> None:
    project_dir = tmp_path / "project"
    Project.init(project_dir, env={"KEEL_USER": "ana"}).close()
    # A named pipe stands in for a huge file: the put reads whatever we feed it, so we
    # know it is mid-copy when we kill it, with no need to write gigabytes first.
    fifo = tmp_path / "incoming.bin"
    os.mkfifo(fifo)
    putter = subprocess.Popen(
        [sys.executable, "-m", "keel", "-C", str(project_dir), "artifacts", "put", str(fifo)],
        env={**os.environ, "KEEL_USER": "ana"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    temp_dir = project_dir / ".keel" / "artifacts" / "tmp"
    chunk = os.urandom(1 << 20)
    try:
        with fifo.open("wb") as feed:
            for _ in range(64):
                feed.write(chunk)
            feed.flush()
            deadline = time.monotonic() + 60
            while not any(p.stat().st_size > 0 for p in temp_dir.glob("*")):
                assert time.monotonic() < deadline, "the put never started writing"
                feed.write(chunk)
                feed.flush()
            putter.send_signal(signal.SIGKILL)
            putter.wait(timeout=30)
    except BrokenPipeError:
        pass  # the reader died while we were writing: that is the point
    finally:
        if putter.poll() is None:
            putter.kill()
        putter.wait(timeout=30)
    assert putter.returncode == -signal.SIGKILL

    assert any(temp_dir.iterdir()), "the killed put should have left its partial temp file"
    listed = _keel(project_dir, "artifacts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["artifacts"] == []
    with Project.open(project_dir, env={"KEEL_USER": "ana"}) as project:
        assert list(project.artifacts.iter_objects()) == []
        assert project.metadata.artifacts.count() == 0
        report = project.gc(grace=timedelta(0))
    assert report.temp_files_removed >= 1
    assert not any(temp_dir.iterdir())
    verified = _keel(project_dir, "artifacts", "verify", "--json")
    assert json.loads(verified.stdout) == {"ok": True, "checked": 0, "corrupt": [], "missing": []}
