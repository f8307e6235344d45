"""The dependency rule and the public surface, held by tests rather than by review."""

from __future__ import annotations

import ast
import importlib
import itertools
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import keel

SRC = Path(keel.__file__).parent

#: Pure layers: the domain and (later) contracts, statistics and release policy.
PURE = ["domain", "contracts", "stats"]
#: What a pure layer must never import.
ADAPTERS = (
    "keel.metadata",
    "keel.artifacts",
    "keel.cli",
    "keel.web",
    "keel.serving",
    "keel.project",
    "keel.workspace",
    "sqlalchemy",
    "alembic",
    "fsspec",
    "s3fs",
    "click",
    "psycopg",
)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", PURE)
def test_pure_layers_import_no_adapter(layer: str) -> None:
    offenders = {
        f"{path.relative_to(SRC)} imports {name}"
        for path in (SRC / layer).rglob("*.py")
        for name in _imports(path)
        if name.startswith(ADAPTERS)
    }
    assert not offenders, sorted(offenders)


#: What each part of the pure core may import of keel: only what sits below it, never a
#: service or an adapter (imports inside functions count too).
BELOW = {
    "domain": ("keel.domain", "keel.errors"),
    "contracts": ("keel.contracts", "keel.domain", "keel.errors", "keel.reports"),
    "stats": ("keel.stats", "keel.domain", "keel.errors", "keel.serial"),
    "reports": ("keel.reports", "keel.errors"),
    "release/policy.py": ("keel.domain", "keel.errors", "keel.spec"),
    "serial.py": ("keel.domain", "keel.errors"),
}


def _keel_imports(path: Path) -> set[str]:
    return {name for name in _imports(path) if name == "keel" or name.startswith("keel.")}


@pytest.mark.parametrize("layer", sorted(BELOW))
def test_pure_core_imports_only_what_is_below_it(layer: str) -> None:
    allowed = BELOW[layer]
    part = SRC / layer
    offenders = {
        f"{path.relative_to(SRC)} imports {name}"
        for path in (part.rglob("*.py") if part.is_dir() else [part])
        for name in _keel_imports(path)
        if not any(name == a or name.startswith(f"{a}.") for a in allowed)
    }
    assert not offenders, sorted(offenders)


#: Shared services: what the services (pipeline, release, serving, monitoring, retraining)
#: all use, each in its own package or module below them.
SHARED = ["predlog", "metrics.py", "code", "models", "data", "lineage"]
#: What a shared service must never import: a service above it, or an interface.
ABOVE = (
    "keel.pipeline",
    "keel.release",
    "keel.monitoring",
    "keel.retraining",
    "keel.serving",
    "keel.web",
    "keel.server",
    "keel.verbs",
    "keel.project",
    "keel.cli",
)


@pytest.mark.parametrize("shared", SHARED)
def test_shared_services_import_no_service_above_them(shared: str) -> None:
    # Imports inside functions count: one of them was enough to tie serving, monitoring,
    # release, the pipeline and models into one cycle.
    part = SRC / shared
    assert part.exists(), f"keel.{shared.removesuffix('.py')} is missing"
    offenders = {
        f"{path.relative_to(SRC)} imports {name}"
        for path in (part.rglob("*.py") if part.is_dir() else [part])
        for name in _keel_imports(path)
        if any(name == a or name.startswith(f"{a}.") for a in ABOVE)
    }
    assert not offenders, sorted(offenders)


#: What the CLI may import: the verbs it acts through, the interfaces beside it, the pure
#: core (for option parsing and rendering). A Python user gets everything it does from
#: keel.Project; pyproject.toml's contract says the same for lint-imports.
CLI_MAY_IMPORT = (
    "keel.cli",
    "keel.verbs",
    "keel.project",
    "keel.workspace",
    "keel.server",
    "keel.demo",
    "keel.domain",
    "keel.errors",
    "keel.version",
    "keel.settings",
    "keel.spec",
    "keel.contracts",
    "keel.stats",
    "keel.reports",
    "keel.serial",
)
#: Constants for option parsing and messages, no logic (pyproject.toml says why).
CLI_CONSTANTS = {
    ("cli/main.py", "keel.code.usercode"),
    ("cli/commands/audit.py", "keel.maturity"),
    ("cli/commands/init.py", "keel.examples"),
}


def test_the_cli_acts_through_the_verbs() -> None:
    offenders = {
        f"{path.relative_to(SRC)} imports {name}"
        for path in (SRC / "cli").rglob("*.py")
        for name in _keel_imports(path)
        if name != "keel"
        and not any(name == a or name.startswith(f"{a}.") for a in CLI_MAY_IMPORT)
        and (path.relative_to(SRC).as_posix(), name) not in CLI_CONSTANTS
    }
    assert not offenders, sorted(offenders)


def test_the_metadata_store_is_reached_through_its_interface() -> None:
    # `keel.metadata` (the port, and the factory that picks the adapter) is the way in: code
    # that imports the SQL adapter's modules directly breaks when the adapter changes.
    offenders = {
        f"{path.relative_to(SRC)} imports {name}"
        for path in SRC.rglob("*.py")
        if path.relative_to(SRC).parts[0] != "metadata"
        for name in _keel_imports(path)
        if name.startswith("keel.metadata.sql")
    }
    assert not offenders, sorted(offenders)


def test_import_linter_holds_the_same_rules() -> None:
    # CI runs lint-imports in scripts/check; this keeps the contracts and the rules above in
    # step: every pure part checked here is a source of a forbidden contract there.
    root = SRC.parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    sources = {
        source
        for contract in config["tool"]["importlinter"]["contracts"]
        for source in contract.get("source_modules", [])
    }
    assert {"keel." + layer.removesuffix(".py").replace("/", ".") for layer in BELOW} <= sources
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_package_all_is_curated() -> None:
    for name in keel.__all__:
        assert hasattr(keel, name), name
    public = {name for name in dir(keel) if not name.startswith("_")}
    modules = {info.name for info in pkgutil.iter_modules(keel.__path__)}
    assert public - modules - set(keel.__all__) == set()


def test_every_module_declares_all() -> None:
    missing = []
    for info in pkgutil.walk_packages(keel.__path__, "keel."):
        if ".migrations" in info.name or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        if info.ispkg:
            continue
        if not hasattr(module, "__all__"):
            missing.append(info.name)
    assert not missing


def _unit(module: str) -> str:
    """The top-level module or package of keel that `module` belongs to."""
    return ".".join(module.split(".")[:2])


def _package_graph() -> dict[str, set[str]]:
    """Which of keel's top-level modules and packages each imports, counting imports inside
    functions and under TYPE_CHECKING. The package root is left out: it is the public
    surface, not a layer (and no module imports it: see the test below)."""
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = module if parts[-1] == "__init__" else module.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names = [".".join([*base, *([node.module] if node.module else [])])]
            for name in names:
                if name.startswith("keel.") and _unit(name) != _unit(module):
                    graph.setdefault(_unit(module), set()).add(_unit(name))
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as the path that closes it, or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph.get(node, ())):
            found = visit(target)
            if found:
                return found
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start)
        if found:
            return found
    return None


def test_the_package_graph_has_no_cycle() -> None:
    # A layer whose parts may import each other (`:` in the layers contract) would let a
    # cycle between them through; this holds it for the whole tree.
    graph = _package_graph()
    assert "keel.serving" in graph and "keel.workspace" in graph  # the walk found the code
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


#: DESIGN.md's layers, top to bottom: what the layers contract must keep in this order.
DESIGN_LAYERS = [
    ("interfaces", {"cli", "project", "server", "web"}),
    ("verbs", {"verbs"}),
    ("closed loop", {"retraining"}),
    ("services", {"monitoring", "release", "pipeline", "serving"}),
    ("shared services", {"predlog", "metrics", "lineage", "models", "data", "code", "events"}),
    ("workspace", {"workspace"}),
    ("stores", {"metadata", "artifacts", "keys"}),
    ("pure core", {"spec", "contracts", "stats", "reports", "domain", "errors"}),
]


def test_the_layers_contract_keeps_design_order_for_every_module() -> None:
    config = tomllib.loads((SRC.parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    assert contract["containers"] == ["keel"]
    assert contract["exhaustive"] is True  # a new top-level module must be placed
    position = {
        name.strip().strip("()"): index
        for index, layer in enumerate(contract["layers"])
        for name in layer.replace("|", ":").split(":")
    }
    order = [(group, {position[name] for name in names}) for group, names in DESIGN_LAYERS]
    for (upper, above), (lower, below) in itertools.pairwise(order):
        assert max(above) < min(below), f"{upper} must sit above {lower}"


#: Modules split into packages, and names their users import from them: still importable.
SPLIT = {
    "keel.spec": ["ProjectSpec", "MetricSpec", "SqlSource", "AlertRule", "load_spec", "parse_spec"],
    "keel.metadata.base": ["MetadataStore", "Predictions", "FeedbackRow", "LoggedKey", "Webhook"],
    "keel.monitoring.feedback": ["ingest", "receive", "performance", "score_window", "align"],
    "keel.monitoring.service": ["WindowPlan", "monitor", "parse_window", "DEFAULT_WINDOWS"],
    "keel.monitoring.skew": ["row_skew", "skew_report", "request_frame", "RowSkewReport"],
    "keel.serving.codec": ["BadRequest", "Problem", "decode_oip", "parse_json", "to_frame"],
    "keel.stats.sketch": ["TableSketch", "ColumnSketch", "NumericSketch", "column_kind"],
    "keel.maturity.checks": ["PRODUCTION", "scorecard"],
    "keel.demo": ["run_demo", "DemoResult", "MODEL", "OWNER", "APPROVER"],
}


@pytest.mark.parametrize("module", sorted(SPLIT))
def test_split_modules_are_packages_that_keep_their_names(module: str) -> None:
    package = importlib.import_module(module)
    assert hasattr(package, "__path__"), f"{module} is still one module"
    for name in SPLIT[module]:
        assert hasattr(package, name), f"{module}.{name}"
    assert set(SPLIT[module]) <= set(package.__all__)


def test_the_demo_is_out_of_the_package_root() -> None:
    assert not (SRC / "demo.py").exists() and not (SRC / "demo_stories.py").exists()
    assert importlib.import_module("keel.demo.stories").STORIES


def test_no_module_imports_the_package_root() -> None:
    """`keel/__init__.py` imports keel.Project and with it the verbs: a service that imported
    it (for the version, say) would reach every layer. keel.version holds the version."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "__init__.py" and path.parent == SRC:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            root = (
                isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "keel"
            ) or (isinstance(node, ast.Import) and any(a.name == "keel" for a in node.names))
            if root:
                offenders.append(str(path.relative_to(SRC.parent)))
    assert offenders == []


MODULE_LINES = 600


def test_no_module_over_600_lines_without_a_reason_at_its_top() -> None:
    """A module a person can hold in mind: one over about 600 lines says why, on purpose."""
    unexplained = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        reason = ast.get_docstring(ast.parse(text)) or ""
        if lines > MODULE_LINES and "on purpose" not in reason:
            unexplained.append(f"{path.relative_to(SRC)} ({lines} lines)")
    assert not unexplained, unexplained
