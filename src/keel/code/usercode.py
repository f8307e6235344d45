"""Calling the user's code: its failures are reported as theirs, with their file and line.

keel calls a project's entry points (`features:build`, `train:train`, a python-function model)
in training, reproduce, the smoke test, batch scoring, serving and its warm-up, retraining and
canary analysis. Whatever those functions raise, and whatever they return that keel cannot use,
is the user's to fix, so it becomes a `UserCodeError` naming the entry point, the innermost
frame inside the user's folder, the exception, and what keel expected. `load_entry_point`
returns every entry point wrapped in a `UserFunction`, so no caller can forget.

A `ModuleNotFoundError` for a library a keel extra provides (`sklearn`, `xgboost`, ...) says
which extra to install: a fresh `pip install keelml` has no scikit-learn.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from keel.errors import KeelError, UserCodeError

__all__ = [
    "EXTRA_FOR_MODULE",
    "UserFunction",
    "check_features",
    "import_failure",
    "type_name",
    "user_code_failure",
    "wrong_return",
]

#: Top-level modules a keel extra installs, and the extra.
EXTRA_FOR_MODULE: Final[Mapping[str, str]] = {
    "sklearn": "sklearn",
    "skops": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "psycopg": "postgres",
    "s3fs": "s3",
    "pyspark": "spark",
}
_FIX: Final = "fix the error in your code, then run the command again"


class UserFunction:
    """An entry point's function; calling it turns any exception it raises into a
    `UserCodeError` (keel's own errors, raised through keel's API, pass unchanged)."""

    def __init__(self, entry_point: str, root: Path, function: Callable[..., Any]) -> None:
        self.entry_point = entry_point
        self.root = root
        self.function = function
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.function(*args, **kwargs)
        except KeelError:
            raise
        except Exception as exc:
            raise user_code_failure(self.entry_point, self.root, exc) from exc

    @property
    def defined_at(self) -> tuple[str | None, int | None]:
        """The file (relative to the user's folder) and line where the function is defined."""
        file, line = _defined_at(self.function)
        return (None if file is None else _relative(Path(file), self.root)), line

    def __repr__(self) -> str:
        return f"<entry point {self.entry_point}>"


def user_code_failure(entry_point: str, root: Path, exc: BaseException) -> UserCodeError:
    """The error for `exc`, raised while keel ran `entry_point` from `root`."""
    file, line = _innermost_user_frame(exc, root)
    where = f" in {file}, line {line}" if file is not None else ""
    return _failure(
        f"{entry_point} failed{where}: {type(exc).__name__}: {exc}", entry_point, file, line, exc
    )


def import_failure(entry_point: str, root: Path, exc: BaseException) -> UserCodeError:
    """The error for an exception raised while importing `entry_point`'s module."""
    if isinstance(exc, SyntaxError) and exc.filename:
        file: str | None = _relative(Path(exc.filename), root)
        line: int | None = exc.lineno
        detail = f"SyntaxError: {exc.msg}"
    else:
        file, line = _innermost_user_frame(exc, root)
        detail = f"{type(exc).__name__}: {exc}"
    where = f" in {file}, line {line}" if file is not None else ""
    return _failure(
        f"entry point '{entry_point}': importing it failed{where}: {detail}",
        entry_point,
        file,
        line,
        exc,
    )


def _failure(
    message: str, entry_point: str, file: str | None, line: int | None, exc: BaseException
) -> UserCodeError:
    """The error for `exc` in the user's code; a missing library names the keel extra."""
    missing = _missing_extra(exc)
    return UserCodeError(
        message,
        entry_point=entry_point,
        file=file,
        line=line,
        exception=type(exc).__name__,
        extra=missing,
        hint=_install_hint(missing) if missing else _FIX,
    )


def check_features(function: Callable[..., Any], built: Any, raw: Any) -> Any:
    """`built`, what the feature function returned for `raw`, if keel can use it: a pandas
    DataFrame with one row per raw row, in the raw rows' order."""
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    expected = "a pandas DataFrame with one row per raw row, in the raw rows' order"
    if not isinstance(built, pd.DataFrame):
        got = "None" if built is None else type_name(built)
        raise wrong_return(function, f"returned {got}", expected)
    if len(built) != len(raw):
        raise wrong_return(
            function, f"returned {len(built):,} rows for {len(raw):,} raw rows", expected
        )
    index = built.index
    # Labels all taken from the raw index but not in its order: rows were sorted, repeated or
    # dropped, and the labels keel joins by position would land on other rows.
    if not index.equals(raw.index) and bool(index.isin(raw.index).all()):
        raise wrong_return(
            function, "returned the raw rows reordered (its index differs)", expected
        )
    return built


def wrong_return(function: Callable[..., Any], what: str, expected: str) -> UserCodeError:
    """The error for an entry point that returned `what` where keel expected `expected`."""
    entry_point = getattr(function, "entry_point", getattr(function, "__name__", "the function"))
    file, line = (
        function.defined_at if isinstance(function, UserFunction) else _defined_at(function)
    )
    where = f" ({file}, line {line})" if file is not None else ""
    name = entry_point.replace(":", ".")
    return UserCodeError(
        f"{entry_point}{where} {what}; {name} must return {expected}",
        entry_point=entry_point,
        file=file,
        line=line,
        expected=expected,
        hint=_FIX,
    )


def _defined_at(function: Callable[..., Any]) -> tuple[str | None, int | None]:
    code = getattr(function, "__code__", None)
    return (None, None) if code is None else (str(code.co_filename), int(code.co_firstlineno))


def type_name(value: object) -> str:
    """The type of `value` as a user reads it: `int`, `pandas.DataFrame`."""
    kind = type(value)
    module = kind.__module__.partition(".")[0]
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _innermost_user_frame(exc: BaseException, root: Path) -> tuple[str | None, int | None]:
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if _inside(Path(frame.filename), root)
    ]
    if not frames:
        return None, None
    return _relative(Path(frames[-1].filename), root), frames[-1].lineno


def _missing_extra(exc: BaseException) -> str | None:
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    return EXTRA_FOR_MODULE.get(exc.name.partition(".")[0])


def _install_hint(extra: str) -> str:
    return f"install keel's {extra} extra: pip install 'keelml[{extra}]'"


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return False
    return True


def _relative(path: Path, root: Path) -> str:
    if _inside(path, root):
        return path.resolve().relative_to(root.resolve()).as_posix()
    return str(path)
