"""keel's version, in a module of its own: every layer may read it without importing the
package root (which imports `keel.Project` and with it the verbs). Hatchling reads it too,
so the wheel and `keel --version` always agree."""

__all__ = ["__version__"]

__version__ = "0.1.0"
