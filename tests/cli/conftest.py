"""CLI tests use the `keel` fixture from tests/fixtures/cli.py; `Keel` is re-exported for types."""

from tests.fixtures.cli import Keel, Result

__all__ = ["Keel", "Result"]
