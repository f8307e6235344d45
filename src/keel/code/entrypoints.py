"""The user's code: which source files an entry point loads, their fingerprint, and loading it.

An entry point is `module:function` (`features:build`), resolved against a folder: the project
folder in training, the packaged code folder of a model version in serving. The fingerprint is
static (the module's imports are read with `ast`, never executed), so computing it runs no user
code. Loading imports the module through a finder that serves only that folder's modules and
leaves `sys.path` and the plain names in `sys.modules` exactly as they were: two projects (or a
project and a packaged model) with a `features.py` each never see each other's modules.
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import types
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from keel.artifacts.hashing import hash_bytes, new_hasher
from keel.code.usercode import UserFunction, import_failure
from keel.domain.digest import Digest
from keel.errors import ConfigError, UserCodeError
from keel.serial import dump, load

__all__ = [
    "CodeFile",
    "CodeFingerprint",
    "entry_point_source",
    "fingerprint_files",
    "load_entry_point",
    "parse_entry_point",
]


def parse_entry_point(spec: str) -> tuple[str, str]:
    """Split `package.module:function` into its module and attribute, or raise ConfigError."""
    module, sep, attribute = spec.strip().partition(":")
    parts = module.split(".")
    if not sep or not attribute.isidentifier() or not all(p.isidentifier() for p in parts):
        raise ConfigError(
            f"entry point '{spec}' must be 'module:function', e.g. 'features:build'",
            problems=[("entry_point", "expected 'module:function'")],
        )
    return module, attribute


@dataclass(frozen=True, slots=True, order=True)
class CodeFile:
    """One source file: its path relative to the code folder (POSIX) and content digest."""

    path: str
    digest: Digest


@dataclass(frozen=True, slots=True)
class CodeFingerprint:
    """The source files an entry point loads from its folder, and one digest over all of them."""

    entry_point: str
    files: tuple[CodeFile, ...]
    digest: Digest

    def to_dict(self) -> dict[str, Any]:
        return dump(self)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> CodeFingerprint:
        """Read `to_dict`'s document; `ValueError` naming each malformed field."""
        return load(cls, document, where="code")


def fingerprint_files(entry_point: str, files: Collection[CodeFile]) -> CodeFingerprint:
    """Combine file digests: BLAKE3 over `path NUL digest LF`, sorted by path."""
    ordered = tuple(sorted(files))
    hasher = new_hasher()
    for file in ordered:
        hasher.update(f"{file.path}\0{file.digest}\n".encode())
    return CodeFingerprint(entry_point, ordered, Digest.of_hex(hasher.hexdigest()))


def entry_point_source(spec: str, project_dir: Path) -> CodeFingerprint:
    """The files `spec` loads from `project_dir`, found without running any of them.

    Starts at the entry module and follows its imports (including those inside functions)
    transitively while they resolve to modules inside `project_dir`; packages contribute their
    `__init__.py`. Third-party and standard-library modules are covered by the environment lock.
    """
    module_name, attribute = parse_entry_point(spec)
    root = project_dir.resolve()
    entry_file = _module_file(root, module_name)
    if entry_file is None:
        raise _missing_module(spec, module_name, root)
    modules = _local_modules(root, module_name)
    _check_defines(spec, entry_file, attribute, root)
    files = [
        CodeFile(path.relative_to(root).as_posix(), hash_bytes(path.read_bytes()))
        for path in sorted({_module_file_or_fail(root, name) for name in modules})
    ]
    return fingerprint_files(spec, files)


def load_entry_point(
    spec: str, project_dir: Path, *, only_files: Collection[str] | None = None
) -> Callable[..., Any]:
    """Import `spec` from `project_dir` and return the callable it names.

    Modules are compiled from source (no `__pycache__` written into the folder) and registered
    under a private name, `_keel_code_<digest>.<module>`, derived from the fingerprint: loading
    the same unchanged code again returns the already imported function, and an edited file is
    imported afresh. `only_files` (relative POSIX paths) restricts which files may be imported,
    so a packaged model loads nothing but the files its manifest lists.

    A missing module, a missing attribute or one that is not callable is a ConfigError; a syntax
    error or an exception while importing it is a `UserCodeError` naming the file and line. The
    function comes back as a `UserFunction`, so whatever it raises when called is reported as
    the user's, with the file and line where their code failed.
    """
    module_name, attribute = parse_entry_point(spec)
    root = project_dir.resolve()
    fingerprint = entry_point_source(spec, root)
    prefix = f"_keel_code_{hash_bytes(str(root).encode()).short}_{fingerprint.digest.short}"
    with _IMPORT_LOCK:
        module = sys.modules.get(f"{prefix}.{module_name}")
        if module is None:
            module = _import_isolated(spec, root, module_name, prefix, only_files)
    target = getattr(module, attribute, None)
    location = _relative(Path(module.__file__ or module_name), root)
    if target is None:
        raise ConfigError(
            f"entry point '{spec}': {location} defines no '{attribute}'",
            problems=[("entry_point", f"no attribute '{attribute}'")],
        )
    if not callable(target):
        raise ConfigError(
            f"entry point '{spec}': '{attribute}' in {location} is a "
            f"{type(target).__name__}, not a function",
            problems=[("entry_point", "not callable")],
        )
    key = f"{prefix}.{module_name}:{attribute}"
    with _IMPORT_LOCK:
        wrapped = _WRAPPED.get(key)
        if wrapped is None or wrapped.function is not target:
            wrapped = _WRAPPED[key] = UserFunction(spec, root, target)
    return wrapped


# -- static analysis ----------------------------------------------------------------------------


def _served_names(root: Path) -> frozenset[str]:
    """Top-level module names that resolve inside `root`.

    Standard-library names are left out even when the folder has such a file: a project's
    `json.py` must not replace the `json` keel itself is using.
    """
    names = set()
    for entry in root.iterdir():
        if entry.suffix == ".py" and entry.stem.isidentifier():
            names.add(entry.stem)
        elif entry.is_dir() and entry.name.isidentifier() and (entry / "__init__.py").is_file():
            names.add(entry.name)
    return frozenset(names - set(sys.stdlib_module_names) - {"keel"})


def _module_file(root: Path, dotted: str) -> Path | None:
    if dotted.partition(".")[0] in sys.stdlib_module_names:
        return None
    base = root.joinpath(*dotted.split("."))
    package_init = base / "__init__.py"
    if package_init.is_file():
        return package_init
    module_file = base.with_suffix(".py")
    # Parent packages must be regular packages for the name to import.
    parents_ok = all(
        (root.joinpath(*dotted.split(".")[:i]) / "__init__.py").is_file()
        for i in range(1, dotted.count(".") + 1)
    )
    return module_file if module_file.is_file() and parents_ok else None


def _module_file_or_fail(root: Path, dotted: str) -> Path:
    path = _module_file(root, dotted)
    assert path is not None  # _local_modules only returns names it resolved
    return path


def _local_modules(root: Path, entry: str) -> set[str]:
    """The entry module and every project-local module it reaches through imports."""
    seen: set[str] = set()
    pending = [entry, *_parents(entry)]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        path = _module_file(root, name)
        if path is None:
            continue
        seen.add(name)
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except SyntaxError:
            continue  # hashed as-is; load_entry_point reports the error with its line
        for imported in _imported_names(tree, name, path.name == "__init__.py"):
            pending.extend([imported, *_parents(imported)])
    return seen


def _parents(dotted: str) -> list[str]:
    parts = dotted.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _imported_names(tree: ast.Module, module: str, is_package: bool) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                if node.level - 1 > len(package):
                    continue  # beyond the top-level package: would fail at import anyway
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if not target:
                continue
            yield target
            # `from pkg import name` imports pkg.name when it is a submodule.
            yield from (f"{target}.{alias.name}" for alias in node.names if alias.name != "*")


def _check_defines(spec: str, path: Path, attribute: str, root: Path) -> None:
    """Fail early (without importing) when the entry module plainly lacks the function."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as exc:
        raise UserCodeError(
            f"entry point '{spec}': syntax error in {_relative(path, root)}, "
            f"line {exc.lineno}: {exc.msg}",
            entry_point=spec,
            file=_relative(path, root),
            line=exc.lineno,
            exception="SyntaxError",
            hint="fix the error in your code, then run the command again",
        ) from exc
    bound: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            if any(alias.name == "*" for alias in node.names):
                return  # a star import may define it: let the import decide
            bound.update((a.asname or a.name).partition(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        else:
            # Names bound inside if/try/with blocks or by exec: do not guess.
            bound.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
    if attribute not in bound and "__getattr__" not in bound:
        raise ConfigError(
            f"entry point '{spec}': {_relative(path, root)} defines no '{attribute}'",
            problems=[("entry_point", f"no attribute '{attribute}'")],
        )


# -- isolated import ----------------------------------------------------------------------------

#: Serialises the window in which plain module names are swapped in `sys.modules`.
_IMPORT_LOCK: Final = threading.RLock()
#: Each loaded entry point's wrapper, so loading unchanged code again returns the same object.
_WRAPPED: Final[dict[str, UserFunction]] = {}


class _FreshSourceLoader(importlib.machinery.SourceFileLoader):
    """Compiles from source every time.

    Bytecode caches are keyed by mtime and size, so two edits within one second that keep the
    size would load stale code; and writing `__pycache__` would change the folder we hash.
    """

    def get_code(self, fullname: str) -> types.CodeType:
        return compile(self.get_data(self.path), self.path, "exec", dont_inherit=True)


class _FolderFinder(importlib.abc.MetaPathFinder):
    def __init__(self, root: Path, names: frozenset[str], only: frozenset[str] | None) -> None:
        self.root = root
        self.names = names
        self.only = only

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] not in self.names:
            return None
        file = _module_file(self.root, fullname)
        if file is None:
            return None
        if self.only is not None and file.relative_to(self.root).as_posix() not in self.only:
            return None
        is_package = file.name == "__init__.py"
        return importlib.util.spec_from_file_location(
            fullname,
            file,
            loader=_FreshSourceLoader(fullname, str(file)),
            submodule_search_locations=[str(file.parent)] if is_package else None,
        )


def _import_isolated(
    spec: str, root: Path, module_name: str, prefix: str, only: Collection[str] | None
) -> types.ModuleType:
    names = _served_names(root)
    served = {k for k in sys.modules if k.partition(".")[0] in names}
    saved = {k: sys.modules.pop(k) for k in served}
    finder = _FolderFinder(root, names, None if only is None else frozenset(only))
    sys.meta_path.insert(0, finder)
    try:
        module = importlib.import_module(module_name)
        loaded = {k: m for k, m in sys.modules.items() if k.partition(".")[0] in names}
    except Exception as exc:
        raise import_failure(spec, root, exc) from exc
    finally:
        sys.meta_path.remove(finder)
        for key in [k for k in sys.modules if k.partition(".")[0] in names]:
            del sys.modules[key]
        sys.modules.update(saved)
    parent = types.ModuleType(prefix, f"keel-loaded code from {root}")
    parent.__path__ = []
    sys.modules[prefix] = parent
    for key, value in loaded.items():
        sys.modules[f"{prefix}.{key}"] = value
    return module


def _missing_module(spec: str, module: str, root: Path) -> ConfigError:
    relative = module.replace(".", "/")
    return ConfigError(
        f"entry point '{spec}': no module '{module}' in {root} "
        f"(looked for {relative}.py and {relative}/__init__.py)",
        problems=[("entry_point", f"module '{module}' not found")],
    )


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except (ValueError, OSError):
        return False
    return True


def _relative(path: Path, root: Path) -> str:
    return path.resolve().relative_to(root).as_posix() if _inside(path, root) else str(path)
