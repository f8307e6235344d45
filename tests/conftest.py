"""Shared fixtures. Backend fixtures live in tests/fixtures/ and are loaded here."""

pytest_plugins = [
    "tests.fixtures.workers",  # first: the fixtures below import it
    "tests.fixtures.cli",
    "tests.fixtures.demo",
    "tests.fixtures.postgres",
    "tests.fixtures.s3",
    "tests.fixtures.trained",
    "tests.fixtures.copies",  # after the two it imports
    "tests.fixtures.untimed",
    "tests.fixtures.webhooks",
]
