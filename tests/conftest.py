"""Shared fixtures. Backend fixtures live in tests/fixtures/ and are loaded here."""

import os

# `keel serve` starts one worker per core by default. The tests that start it as a process
# run it as one process (quicker to start, and what they check is not about workers); the
# tests of --workers (tests/serving/test_workers.py) ask for workers, and for the default.
os.environ.setdefault("KEEL_SERVE_WORKERS", "1")

pytest_plugins = [
    "tests.fixtures.workers",  # first: the fixtures below import it
    "tests.fixtures.cli",
    "tests.fixtures.demo",
    "tests.fixtures.postgres",
    "tests.fixtures.s3",
    "tests.fixtures.spark",
    "tests.fixtures.trained",
    "tests.fixtures.copies",  # after the two it imports
    "tests.fixtures.untimed",
    "tests.fixtures.webhooks",
]
