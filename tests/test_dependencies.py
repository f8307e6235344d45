"""The dependencies keel declares are the ones its code imports: `pip install keelml` brings
every library a module imports when it loads, an extra brings the ones keel imports only when a
feature needs them, and nothing is declared that no code imports."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import keel

SRC = Path(keel.__file__).parent
PYPROJECT = SRC.parents[1] / "pyproject.toml"

#: Libraries keel imports that come with a library it declares, because keel uses them only
#: through that library's own types (a facet class, a template's markup, the S3 client's errors).
BROUGHT_BY = {
    "attrs": "openlineage-python",
    "markupsafe": "jinja2",
    "botocore": "s3fs",
    "threadpoolctl": "scikit-learn",
    "py4j": "pyspark",  # the Spark engine catches the JVM gateway's errors
}
#: Extras for tooling rather than for keel's code.
TOOLING_EXTRAS = {"dev", "bench"}
#: Namespace packages several distributions share: named by their first two parts.
NAMESPACES = {"google"}
#: Modules of a namespace package, and the distribution that brings each.
MODULE_DISTRIBUTIONS = {"google.protobuf": "protobuf"}
#: Packages of keel that only an extra's feature imports, and that extra: their modules may
#: import its libraries when they load (whoever imports the package checks the extra first).
EXTRA_PACKAGES = {"serving/grpc/": "grpc"}
#: Declared libraries keel never imports itself: uvicorn picks them up when they are
#: installed (its HTTP parser, which keel.web.server.BoundedHead extends, and event loop).
USED_BY_UVICORN = {"httptools", "uvloop"}


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match is not None, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    core = {_name(r) for r in project["dependencies"]}
    extras = {
        _name(r)
        for extra, requirements in project["optional-dependencies"].items()
        if extra not in TOOLING_EXTRAS
        for r in requirements
        if not r.startswith("keelml")
    }
    return core, extras


def _third_party(node: ast.AST) -> Iterator[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        names = [node.module]
    else:
        return
    for name in names:
        top = name.partition(".")[0]
        if top in NAMESPACES:
            yield ".".join(name.split(".")[:2])
        elif top != "keel" and top not in sys.stdlib_module_names:
            yield top


def _imports(*, on_load_only: bool) -> dict[str, set[str]]:
    """Top-level modules of other distributions, and the keel files that import them:
    every import, or only those a module runs when it loads (outside functions, `try` and
    `if TYPE_CHECKING`)."""
    found: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nodes = tree.body if on_load_only else list(ast.walk(tree))
        for node in nodes:
            for module in _third_party(node):
                found.setdefault(module, set()).add(str(path.relative_to(SRC)))
    return found


@functools.cache
def _distribution(module: str) -> str:
    if module in MODULE_DISTRIBUTIONS:
        return MODULE_DISTRIBUTIONS[module]
    distributions = importlib.metadata.packages_distributions().get(module)
    # Extras not installed here (xgboost, lightgbm) are named as their modules are.
    return _name(distributions[0]) if distributions else _name(module)


def _requires(distribution: str) -> set[str]:
    """Everything `distribution` installs, its own requirements' requirements included."""
    seen: set[str] = set()
    todo = [distribution]
    while todo:
        current = todo.pop()
        try:
            requirements = importlib.metadata.requires(current) or []
        except importlib.metadata.PackageNotFoundError:
            continue  # a requirement for other platforms or Python versions
        for requirement in requirements:
            if "extra ==" in requirement:
                continue
            name = _name(requirement)
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


def test_what_modules_import_when_they_load_comes_with_pip_install_keelml() -> None:
    core, _ = _declared()
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]

    def brought(module: str, path: str) -> bool:
        distribution = _distribution(module)
        if distribution in core or BROUGHT_BY.get(distribution) in core:
            return True
        extra = next((e for p, e in EXTRA_PACKAGES.items() if path.startswith(p)), None)
        return extra is not None and distribution in {_name(r) for r in extras[extra]}

    missing = {
        f"{module} ({_distribution(module)}), imported by {sorted(files)}"
        for module, files in _imports(on_load_only=True).items()
        if not all(brought(module, path) for path in files)
    }
    assert not missing, sorted(missing)


def test_every_library_keel_imports_is_declared() -> None:
    core, extras = _declared()
    declared = core | extras
    undeclared = {
        f"{module} ({_distribution(module)})"
        for module in _imports(on_load_only=False)
        if _distribution(module) not in declared
        and BROUGHT_BY.get(_distribution(module)) not in declared
    }
    assert not undeclared, sorted(undeclared)


def test_every_declared_library_is_imported() -> None:
    core, extras = _declared()
    imported = {_distribution(module) for module in _imports(on_load_only=False)}
    # Model libraries keel loads with importlib.import_module(name), out of this scan's sight.
    by_name = {"skops", "lightgbm", "xgboost"}
    unused = (core | extras) - imported - by_name - USED_BY_UVICORN
    assert not unused, sorted(unused)


def test_libraries_that_come_with_another_do() -> None:
    for library, carrier in BROUGHT_BY.items():
        assert library in _requires(carrier), f"{carrier} no longer brings {library}"


def test_keel_imports_no_private_module_of_another_library() -> None:
    # A private module (scipy.stats._stats_py) moves or changes without notice.
    offenders = {
        f"{path.relative_to(SRC)} imports {name}"
        for path in SRC.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
        for name in [node.module]
        if not name.startswith("keel") and any(part.startswith("_") for part in name.split(".")[1:])
    }
    assert not offenders, sorted(offenders)


def test_missing_dependency_errors_name_an_optional_library_and_its_extra() -> None:
    # A core dependency is never missing: an error naming it sends users to an extra in vain.
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    core, _ = _declared()
    extras = {
        extra: {_name(r) for r in requirements}
        for extra, requirements in project["optional-dependencies"].items()
    }
    wrong = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "DependencyMissing"
                and len(node.args) >= 2
                and all(isinstance(a, ast.Constant) for a in node.args[:2])
            ):
                continue
            package, extra = (str(a.value) for a in node.args[:2])
            where = f"{path.relative_to(SRC)}:{node.lineno}"
            if _name(package) in core:
                wrong.add(f"{where}: {package} is a core dependency")
            elif _name(package) not in extras.get(extra, set()):
                wrong.add(f"{where}: the {extra} extra does not install {package}")
    assert not wrong, sorted(wrong)
