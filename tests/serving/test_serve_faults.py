"""`keel serve` under faults, as a user runs it (a real process on loopback, a real store):
SIGKILL under load in durable and buffered mode, PostgreSQL stopped while it serves, and
SIGTERM during the outage. Acknowledged means answered 200 with prediction ids."""

from __future__ import annotations

import http.client
import os
import pwd
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from keel.project import Project
from tests.fixtures.postgres import ENV_URL, _newest_bin_dir
from tests.fixtures.trained import TrainedOnPostgres, write_spec
from tests.serving.support import KEEL, Client, free_port, records, wait_ready

pytestmark = [pytest.mark.load, pytest.mark.timed]

MODEL = "flights-delay"
INTERVAL = 0.2  # serving.log.flush_interval's default
#: Generous: a commit plus scheduling on a loaded two-core machine, so this never flakes.
MARGIN = 1.5
LOAD_S = 2.0


def _project(template: Path, folder: Path, db_url: str | None, **log: object) -> Path:
    """A copy of the trained project serving v1, with `serving.log` set; on PostgreSQL the
    copy's store is `db_url` (a copy of the trained template's database)."""
    import shutil

    shutil.copytree(template, folder)
    env = {"KEEL_USER": "ana", **({"KEEL_DB_URL": db_url} if db_url else {})}
    write_spec(
        folder,
        serving={"reload_interval": "200ms", "shutdown_timeout": "5s", "log": log},
    )
    with Project.open(folder, env=env) as project:
        releases = project.metadata.releases
        releases.move_alias(
            MODEL,
            "production",
            1,
            expected_holder=releases.holder(MODEL, "production"),
            actor="ana",
            reason="test",
        )
    return folder


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("trained_postgres_url")
    return url


@pytest.fixture
def template(request: pytest.FixtureRequest, trained_template: Path, db_url: str | None) -> Path:
    """The trained project whose store `db_url` is (or copies)."""
    if db_url is None:
        return trained_template
    trained: TrainedOnPostgres = request.getfixturevalue("trained_postgres_template")
    return trained.folder


@contextmanager
def _serving(
    folder: Path, db_url: str | None, stderr_to: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env["KEEL_USER"] = "ana"
    if db_url is not None:
        env["KEEL_DB_URL"] = db_url
    with stderr_to.open("ab") as stderr:
        process = subprocess.Popen(
            [KEEL, "-C", folder, "serve", "--port", str(port), "--workers", "1"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, process)
            yield url, process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


class _Load:
    """Clients sending one-record /predict requests; records each acknowledged id with the
    time its answer arrived."""

    def __init__(self, url: str, rows: list[dict[str, Any]], clients: int = 3) -> None:
        self.acked: dict[str, float] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(url, rows[i::clients]), daemon=True)
            for i in range(clients)
        ]

    def __enter__(self) -> _Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self, url: str, rows: list[dict[str, Any]]) -> None:
        with Client(url, timeout=10) as client:
            for row in rows * 100:
                if self._stop.is_set():
                    return
                try:
                    answer = client.post("/predict", {"records": [row]})
                except (OSError, http.client.HTTPException):  # killed mid-request: no answer
                    return
                if answer.status == 200:
                    now = time.time()
                    for prediction in answer.json()["predictions"]:
                        self.acked[prediction["id"]] = now
                else:
                    self.errors.append(f"{answer.status} {answer.text}")


def _missing(folder: Path, db_url: str | None, ids: list[str]) -> list[str]:
    env = {"KEEL_USER": "ana", **({"KEEL_DB_URL": db_url} if db_url else {})}
    with Project.open(folder, env=env) as project:
        store = project.metadata.predictions
        return [i for i in ids if store.get(i) is None]


def _eventually_none_missing(
    folder: Path, db_url: str | None, ids: list[str], timeout: float = 60
) -> list[str]:
    deadline = time.monotonic() + timeout
    missing = _missing(folder, db_url, ids)
    while missing and time.monotonic() < deadline:
        time.sleep(0.5)
        missing = _missing(folder, db_url, missing)
    return missing


def _kill_under_load(
    folder: Path, db_url: str | None, tmp_path: Path, template: Path
) -> tuple[dict[str, float], float]:
    with (
        _serving(folder, db_url, tmp_path / "serve.err") as (url, process),
        _Load(url, records(template, 300)) as load,
    ):
        time.sleep(LOAD_S)
        killed_at = time.time()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert not load.errors, load.errors[:3]
    assert len(load.acked) > 20, "the load never got going"
    return load.acked, killed_at


@pytest.mark.slow
def test_sigkill_under_load_in_durable_mode_loses_no_acknowledged_row(
    trained_template: Path, template: Path, tmp_path: Path, db_url: str | None
) -> None:
    folder = _project(template, tmp_path / "flights", db_url, durability="durable")
    acked, _ = _kill_under_load(folder, db_url, tmp_path, trained_template)
    # The next start replays the killed process's spool.
    with _serving(folder, db_url, tmp_path / "serve.err") as (_, process):
        missing = _eventually_none_missing(folder, db_url, list(acked))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged rows were lost"


@pytest.mark.slow
def test_sigkill_under_load_in_buffered_mode_loses_only_the_stated_window(
    trained_template: Path, template: Path, tmp_path: Path, db_url: str | None
) -> None:
    folder = _project(template, tmp_path / "flights", db_url, durability="buffered")
    acked, killed_at = _kill_under_load(folder, db_url, tmp_path, trained_template)
    missing = _missing(folder, db_url, list(acked))
    # Whatever was lost was acknowledged within flush_interval plus a commit of the kill.
    too_old = [i for i in missing if acked[i] < killed_at - INTERVAL - MARGIN]
    assert not too_old, f"{len(too_old)} rows acknowledged well before the kill were lost"


# --- PostgreSQL stopped while serving -----------------------------------------------------


class _Postgres:
    """Stop and start the test cluster serving `url` (the fixture's own, on this machine)."""

    def __init__(self, url: str) -> None:
        bin_dir = _newest_bin_dir()
        assert bin_dir is not None
        self.bin_dir = bin_dir
        parsed = make_url(url)
        with psycopg.connect(
            host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database
        ) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
        assert row is not None
        self.data = Path(row[0])
        # The server's own command line, to start it again exactly as it was.
        options = shlex.split((self.data / "postmaster.opts").read_text())[1:]
        self.options = shlex.join(options)

    def _pg_ctl(self, *args: str) -> None:
        privileges: dict[str, Any] = {}
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            privileges = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        subprocess.run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=120,
            **privileges,
        )

    def stop(self) -> None:
        # fast, not immediate: the test cluster runs with synchronous_commit=off, so a crash
        # of PostgreSQL itself would lose commits it had acknowledged (not keel's doing).
        self._pg_ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        self._pg_ctl("-o", self.options, "-l", str(self.data.parent / "server.log"), "-w", "start")


@contextmanager
def _stopped(postgres: _Postgres) -> Iterator[None]:
    postgres.stop()
    try:
        yield
    finally:
        postgres.start()


def _outage_lines(text: str) -> list[str]:
    return [
        line
        for line in text.splitlines()
        if "unreachable" in line or "cannot read the metadata store" in line
    ]


@pytest.mark.slow
@pytest.mark.postgres
def test_postgresql_stopped_while_serving_and_sigterm_during_the_outage(
    trained_template: Path,
    trained_postgres_template: TrainedOnPostgres,
    tmp_path: Path,
    trained_postgres_url: str,
) -> None:
    if os.environ.get(ENV_URL):
        pytest.skip("stops PostgreSQL: only the tests' own throwaway cluster")
    folder = _project(trained_postgres_template.folder, tmp_path / "flights", trained_postgres_url)
    postgres = _Postgres(trained_postgres_url)
    rows = records(trained_template, 60)
    acked: list[str] = []
    err = tmp_path / "serve.err"

    def predict(client: Client, batch: list[dict[str, Any]]) -> None:
        for row in batch:
            answer = client.post("/predict", {"records": [row]})
            assert answer.status == 200, answer.text  # the spool takes what the store cannot
            acked.extend(p["id"] for p in answer.json()["predictions"])

    with _serving(folder, trained_postgres_url, err) as (url, process), Client(url) as client:
        predict(client, rows[:10])
        before = err.read_text()
        with _stopped(postgres):
            predict(client, rows[10:30])
            time.sleep(3)  # 15 polls of the reload watcher, a few writer retries
            assert client.get("/v2/health/ready").status == 200  # the spool carries the rows
            during = err.read_text()[len(before) :]
        # One line per state change, not one per poll; no tracebacks.
        assert "Traceback" not in during, during
        assert 1 <= len(_outage_lines(during)) <= 4, during
        # Back: the rows carried on the spool arrive without a restart.
        assert not _eventually_none_missing(folder, trained_postgres_url, acked)
        assert "is back after" in err.read_text()

        with _stopped(postgres):
            predict(client, rows[30:60])
            stopping = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=60)
            took = time.monotonic() - stopping
        text = err.read_text()
        assert code == 0, text
        assert took < 5 + 5, f"SIGTERM took {took:.1f} s with serving.shutdown_timeout 5s"
        assert "Traceback" not in text, text

    # The next start replays what the stopped server spilled: nothing acknowledged is lost.
    with _serving(folder, trained_postgres_url, err) as (_, process):
        missing = _eventually_none_missing(folder, trained_postgres_url, acked)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged rows were lost"
