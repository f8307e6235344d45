"""Writing a rendered folder all at once: built beside the target, then renamed into place.

A reader sees the old folder or the new one, never a mix. A folder that exists and is not
empty is replaced only with `force`, and only if a render wrote it (it holds the marker
file), so `--force` cannot delete a project or a home folder by a slip of `-o`. Even then
only the files the marker lists as rendered are replaced or removed: anything the user added
beside them (a kustomization.yaml, a README) is carried over into the new render unchanged.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Final

from keel.errors import Conflict, PermissionDenied

__all__ = ["MARKER", "write_folder"]

#: Written into every rendered folder. No .json or .yaml suffix: `kubectl apply -f DIR`
#: reads those, and this is not a manifest.
MARKER: Final = ".keel-render"


def _check_path(path: str) -> PurePosixPath:
    relative = PurePosixPath(path)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ValueError(f"rendered path {path!r} must stay inside the folder")
    return relative


def _sibling(target: Path, role: str) -> Path:
    """A new hidden folder beside `target` (same file system, so renames are atomic), made
    with the user's umask like any folder they create."""
    folder = target.parent / f".{target.name}.{role}-{secrets.token_hex(6)}"
    folder.mkdir()
    return folder


def _user_files(target: Path) -> list[str]:
    """What in an earlier render's folder its marker does not list: the user's own."""
    try:
        listed = json.loads((target / MARKER).read_text(encoding="utf-8"))["files"]
        rendered = {str(_check_path(str(path))) for path in listed}
    except (OSError, ValueError, KeyError, TypeError):
        raise Conflict(
            f"{target / MARKER} is unreadable, so which files a render wrote is unknown; "
            "nothing was written",
            hint="choose an empty or new -o folder",
        ) from None
    found = []
    for path in sorted(target.rglob("*")):
        relative = path.relative_to(target).as_posix()
        if relative == MARKER or relative in rendered:
            continue
        if path.is_dir() and not path.is_symlink() and any(path.iterdir()):
            continue  # its files are listed one by one
        found.append(relative)
    return found


def write_folder(
    target: Path, files: Mapping[str, bytes], marker: Mapping[str, Any], *, force: bool
) -> list[str]:
    """Make `target` hold `files` (plus the marker describing them) and, when it replaces an
    earlier render, the files the user added to it; returns those (relative paths)."""
    target = target.resolve()
    kept: list[str] = []
    existing = target.exists() and (not target.is_dir() or any(target.iterdir()))
    if existing:
        if not force:
            raise Conflict(
                f"{target} exists and is not empty; nothing was written",
                hint="choose another -o folder, or pass --force to replace an earlier render",
            )
        if not (target / MARKER).is_file():
            raise Conflict(
                f"{target} was not written by `keel deploy render` (it has no {MARKER}); "
                "--force replaces only an earlier render",
                hint="choose an empty or new -o folder",
            )
        kept = _user_files(target)
        clashes = [path for path in kept if path in files]
        if clashes:
            raise Conflict(
                f"{target} holds {', '.join(clashes)} of your own, which this render would "
                "write too; nothing was written",
                hint="move or rename your file, or render into another -o folder",
            )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = _sibling(target, "new")
    except PermissionError as exc:
        raise PermissionDenied(
            f"cannot write in {target.parent}: {exc.strerror}; nothing was written",
            hint="choose an -o folder you can write to",
        ) from None
    try:
        for path, data in sorted(files.items()):
            destination = staging.joinpath(*_check_path(path).parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(data)
        for path in kept:
            source, destination = target / path, staging / path
            destination.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir() and not source.is_symlink():
                destination.mkdir(exist_ok=True)
            else:
                shutil.copy2(source, destination, follow_symlinks=False)
        document = {**marker, "files": sorted(files)}
        (staging / MARKER).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        if existing:
            retired = _sibling(target, "old")
            target.rename(retired / target.name)
            try:
                staging.rename(target)
            except BaseException:
                (retired / target.name).rename(target)  # the earlier render stays
                retired.rmdir()
                raise
            shutil.rmtree(retired, ignore_errors=True)
        else:
            if target.is_dir():
                target.rmdir()  # empty: nothing is lost
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return kept
