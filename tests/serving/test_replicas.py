"""Replicas: three `keel serve` processes on their own ports and their own copies of the
project, sharing one PostgreSQL and one S3 (moto's server), as pods behind a load balancer
do. Under load, a promotion and a rollback reach every replica within seconds, the canary's
share holds across them, no request fails, and every answered prediction is logged exactly
once."""

from __future__ import annotations

import math
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from keel.pipeline.train import train
from keel.predlog.read import get
from keel.project import Project
from tests.fixtures.s3 import S3Server
from tests.fixtures.trained import AS_OF, BASE, write_spec
from tests.serving.support import Load, Probe, eventually, records, serve_process, set_alias

pytestmark = [
    pytest.mark.slow,
    pytest.mark.load,
    pytest.mark.timed,  # every replica switches within SWITCH_WITHIN_S
    pytest.mark.postgres,
    pytest.mark.s3,
]

REPLICAS = 3
SWITCH_WITHIN_S = 5.0
CANARY_SHARE = 0.3


@pytest.fixture
def shared(
    trained_template: Path, fresh_postgres_url: str, s3_server: S3Server, tmp_path: Path
) -> Iterator[tuple[Path, dict[str, str]]]:
    """The flights project with v1 and v2 trained into one PostgreSQL database and one S3
    prefix, and the environment every replica gets (the stores' addresses and keys)."""
    env = {
        "KEEL_USER": "ana",
        "KEEL_DB_URL": fresh_postgres_url,
        "KEEL_ARTIFACTS": s3_server.url(),
        "AWS_ACCESS_KEY_ID": s3_server.key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret,
        "AWS_ENDPOINT_URL": s3_server.endpoint_url,
        "AWS_DEFAULT_REGION": s3_server.region,
    }
    folder = tmp_path / "flights"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        Project.init(folder, env=env).close()
        for name in ("features.py", "train.py", "raw.parquet"):
            shutil.copy(trained_template / name, folder / name)
        shutil.copytree(trained_template / "contracts", folder / "contracts", dirs_exist_ok=True)
        for number, iterations in ((1, 10), (2, 20)):
            params = {**BASE["training"], "params": {"max_iter": iterations}}  # type: ignore[dict-item]
            write_spec(folder, training=params)
            with Project.open(folder, env=env) as project:
                result = train(project, as_of=AS_OF)
                assert result.registered is not None and result.registered.version == number
        write_spec(folder, serving={"canary_share": CANARY_SHARE})
        with Project.open(folder, env=env) as project:
            set_alias(project, "production", 1)
        yield folder, env


def _switch(probes: list[Probe], version: int) -> list[float]:
    """Seconds until each replica answered with `version` five times in a row."""
    started = time.monotonic()
    took = []
    for probe in probes:
        eventually(lambda p=probe: p.all_answer(version, times=5), timeout=60, every=0.05)
        took.append(time.monotonic() - started)
    return took


def test_replicas_switch_together_and_log_every_answer_once(
    shared: tuple[Path, dict[str, str]], trained_template: Path, tmp_path: Path
) -> None:
    folder, env = shared
    rows = records(trained_template, 100)
    # What each pod gets: its own copy of the project, the shared stores' addresses, and
    # the public signing key mounted from a Secret (servers verify; they never sign).
    keys = tmp_path / "mounted-keys"
    keys.mkdir()
    shutil.copy(folder / ".keel" / "keys" / "signing.pub", keys / "signing.pub")
    replica_env = {**env, "KEEL_KEYS": str(keys)}
    with ExitStack() as stack:
        replicas = []
        for n in range(REPLICAS):
            copy = tmp_path / f"replica-{n}"
            shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(".keel"))
            stderr = tmp_path / f"replica-{n}.err"
            replicas.append(stack.enter_context(serve_process(copy, stderr, env=replica_env)))
        urls = [url for url, _ in replicas]
        probes = [Probe(url, rows[0]) for url in urls]

        with Load(urls, rows, clients=6) as load, Project.open(folder, env=env) as project:
            eventually(lambda: len(load.answers) >= 60, timeout=60)
            set_alias(project, "production", 2)
            promoted = _switch(probes, 2)
            set_alias(project, "production", 1)
            rolled_back = _switch(probes, 1)
            set_alias(project, "canary", 2)
            eventually(lambda: any(s == "canary" for _, _, s in load.answers[-50:]), 30)
            canary_from = len(load.answers)
            eventually(lambda: len(load.answers) >= canary_from + 300, timeout=120)
        assert not load.failures, load.failures[:3]
        assert max(promoted) < SWITCH_WITHIN_S, promoted
        assert max(rolled_back) < SWITCH_WITHIN_S, rolled_back

        # The canary's share, over every replica (each draws per request on its own).
        window = load.answers[canary_from:]
        canary = sum(slot == "canary" for _, _, slot in window)
        sigma = math.sqrt(len(window) * CANARY_SHARE * (1 - CANARY_SHARE))
        assert abs(canary - len(window) * CANARY_SHARE) < 4.5 * sigma, (canary, len(window))
        assert all(v == 2 for _, v, slot in window if slot == "canary")

        for _, process in replicas:
            process.send_signal(signal.SIGTERM)
        for _, process in replicas:
            assert process.wait(timeout=60) == 0

    # Every answered prediction is in the shared log exactly once, as answered.
    answered = [*load.answers]
    sent_by_probes = sum(p.sent for p in probes)
    with Project.open(folder, env=env) as project:
        for prediction_id, version, slot in answered:
            logged = get(project, prediction_id)
            assert logged is not None, prediction_id
            assert (logged.version, logged.slot) == (version, slot)
        total = sum(s.rows for s in project.metadata.predictions.stats())
    assert len({i for i, _, _ in answered}) == len(answered)
    assert total == len(answered) + sent_by_probes
