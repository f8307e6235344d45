"""Where a lake table's files are: a local folder or an S3 prefix, behind one small interface.

A manifest (`keel.domain.dataset.Manifest`) names files relative to a location; a location
lists them with their size and identity, reads them, and tells whether a file is still what a
manifest says. Identity is what can be had without reading a file again:

- local: the BLAKE3 digest, through the stat cache (`keel.data.statcache`), so a file is
  hashed once and again only when its size, mtime or inode change;
- S3: the ETag and size S3 reports in a listing (the same as a HEAD request's), because
  reading every object of a big table to hash it would defeat the point of not copying it.
  An ETag changes whenever an object is written again, so it catches a file rewritten in
  place; it is not a digest keel computed, and two copies of one file may have different ones.

S3 is reached with s3fs, credentials and endpoint from the standard AWS chain
(`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL`, ~/.aws files, instance roles),
as the S3 artifact store does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

from keel.data.statcache import StatCache, StatKey
from keel.errors import DataError, DependencyMissing

__all__ = [
    "PARQUET_SUFFIXES",
    "LakeFile",
    "LocalLocation",
    "Location",
    "S3Location",
    "is_hidden",
    "is_parquet_name",
    "location",
]

PARQUET_SUFFIXES: Final = (".parquet", ".pq", ".parq")


@dataclass(frozen=True, slots=True)
class LakeFile:
    """A file under a location: its name relative to it, size and identity (or None when
    the listing does not give it, as for a local file not yet hashed)."""

    path: str
    size: int
    identity: str | None = None


class Location(ABC):
    """A folder of files, local or in S3, named by `url`."""

    url: str

    @abstractmethod
    def listing(self, under: str = "") -> dict[str, LakeFile]:
        """Every file below `under` (relative to the location), by relative path."""

    @abstractmethod
    def identities(self, files: Sequence[LakeFile]) -> list[str]:
        """The identity of each file (see the module docstring), in order."""

    @abstractmethod
    def read_bytes(self, path: str) -> bytes:
        """A (small) file's bytes: a Delta log entry."""

    @abstractmethod
    def read_parquet(self, path: str, identity: str | None = None) -> pa.Table:
        """One Parquet file as a table; with `identity`, DataError if the file opened is
        not that one any more (where the store can tell without reading it twice)."""

    def find(self, paths: Sequence[str]) -> dict[str, LakeFile]:
        """The named files that exist, by path (one listing; a local folder stats each)."""
        listed = self.listing()
        return {path: listed[path] for path in paths if path in listed}

    @property
    def files_hashed(self) -> int:
        """How many files were read to compute an identity (local files the cache missed)."""
        return 0

    def close(self) -> None:
        return None


def location(url: str, *, stat_db: Path | None = None) -> Location:
    """The location `url` names: `s3://bucket/prefix` or an absolute local folder; without
    `stat_db` (the stat cache's file), a local one only reads files, as a Spark executor
    does, and asking it for identities is a bug."""
    if url.lower().startswith("s3://"):
        return S3Location(url)
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise DataError(
            f"{url}: keel reads lake tables from a local folder or s3://, not {scheme}://",
            path=url,
        )
    return LocalLocation(Path(url), stat_db=stat_db)


class LocalLocation(Location):
    """A local folder; identities are BLAKE3 digests from the stat cache."""

    def __init__(self, root: Path, *, stat_db: Path | None = None) -> None:
        self.root = root
        self.url = str(root)
        self._cache: StatCache | None = None
        self._stat_db = stat_db

    def _stat_cache(self) -> StatCache:
        if self._cache is None:
            assert self._stat_db is not None, "a location without a stat cache only reads"
            self._cache = StatCache(self._stat_db)
        return self._cache

    def listing(self, under: str = "") -> dict[str, LakeFile]:
        folder = self.root / under if under else self.root
        if folder.is_file():
            return {under: LakeFile(under, folder.stat().st_size)}
        if not folder.is_dir():
            return {}
        found = {}
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                name = path.relative_to(self.root).as_posix()
                found[name] = LakeFile(name, path.stat().st_size)
        return found

    def find(self, paths: Sequence[str]) -> dict[str, LakeFile]:
        # A stat per file: the folder may hold far more than the table (a file's parent).
        found = {}
        for path in paths:
            try:
                info = (self.root / path).stat()
            except FileNotFoundError:
                continue
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                raise DataError(f"{self.root / path}: cannot read: {reason}", path=path) from None
            found[path] = LakeFile(path, info.st_size)
        return found

    def identities(self, files: Sequence[LakeFile]) -> list[str]:
        cache = self._stat_cache()
        result = []
        for file in files:
            path = self.root / file.path
            try:
                result.append(str(cache.digest(path, StatKey.of(path))))
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                raise DataError(f"{path}: cannot read: {reason}", path=path) from None
        return result

    @property
    def files_hashed(self) -> int:
        return 0 if self._cache is None else self._cache.misses

    def read_bytes(self, path: str) -> bytes:
        target = self.root / path
        try:
            return target.read_bytes()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise DataError(f"{target}: cannot read: {reason}", path=target) from None

    def read_parquet(self, path: str, identity: str | None = None) -> pa.Table:
        # The digest was checked through the stat cache just before; hashing the bytes read
        # again would double the reading for a race the snapshot checks for afterwards.
        target = self.root / path
        try:
            return pq.read_table(str(target))
        except (pa.ArrowException, OSError) as exc:
            reason = _first_line(str(exc)).split("': ", 1)[-1]
            raise DataError(f"{target}: not a valid Parquet file: {reason}", path=target) from None

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None


class S3Location(Location):
    """A prefix in an S3 bucket; identities are ETags."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if not parts.netloc or parts.query or parts.fragment:
            raise DataError(f"{url}: expected s3://bucket/prefix", path=url)
        try:
            import s3fs
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            raise DependencyMissing("s3fs", "s3", "Reading tables from S3") from None
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.url = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        self._errors_caught: tuple[type[BaseException], ...] = (
            OSError,
            BotoCoreError,
            ClientError,
        )
        # No caches: the point of a listing here is to see the objects as they are now.
        self._fs: Any = s3fs.S3FileSystem(
            config_kwargs={"retries": {"mode": "standard", "total_max_attempts": 3}},
            skip_instance_cache=True,
            use_listings_cache=False,
        )

    def _key(self, path: str) -> str:
        return f"{self.bucket}/{self.prefix}/{path}" if self.prefix else f"{self.bucket}/{path}"

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError:
            raise DataError(f"{what}: no such object or prefix", path=what) from None
        except PermissionError:
            raise DataError(
                f"{what}: access denied",
                path=what,
                hint="check the AWS credentials keel runs with (AWS_ACCESS_KEY_ID, ...)",
            ) from None
        except self._errors_caught as exc:
            raise DataError(f"{what}: cannot read from S3: {_first_line(str(exc))}") from None

    def listing(self, under: str = "") -> dict[str, LakeFile]:
        root = self._key(under).rstrip("/") if under else self._key("").rstrip("/")
        base = f"{self.bucket}/{self.prefix}/" if self.prefix else f"{self.bucket}/"
        with self._errors(f"s3://{root}"):
            found = self._fs.find(root, detail=True)
        files = {}
        for key, info in sorted(found.items()):
            if info.get("type") == "directory" or not key.startswith(base):
                continue
            name = key[len(base) :]
            etag = str(info.get("ETag", "")).strip('"')
            files[name] = LakeFile(name, int(info["size"]), f"etag:{etag}" if etag else None)
        return files

    def identities(self, files: Sequence[LakeFile]) -> list[str]:
        missing = [f for f in files if f.identity is None]
        listed = self.listing() if missing else {}
        result = []
        for file in files:
            found = listed.get(file.path)
            identity = file.identity or (found.identity if found is not None else None)
            if identity is None:
                raise DataError(
                    f"{self.url}/{file.path}: S3 gives no ETag for this object", path=file.path
                )
            result.append(identity)
        return result

    def read_bytes(self, path: str) -> bytes:
        with self._errors(f"s3://{self._key(path)}"):
            data: bytes = self._fs.cat_file(self._key(path))
        return data

    def read_parquet(self, path: str, identity: str | None = None) -> pa.Table:
        where = f"s3://{self._key(path)}"
        with self._errors(where):
            handle = self._fs.open(self._key(path), "rb")
        try:
            with handle:
                # The object as opened (its HEAD): rewritten since it was checked, it is
                # another object, whose bytes the manifest does not name.
                etag = str(handle.details.get("ETag", "")).strip('"')
                if identity is not None and etag and f"etag:{etag}" != identity:
                    raise DataError(
                        f"{where} changed content while it was being read: {identity} -> "
                        f"etag:{etag}",
                        path=where,
                    )
                return pq.read_table(handle)
        except pa.ArrowException as exc:
            raise DataError(
                f"{where}: not a valid Parquet file: {_first_line(str(exc))}", path=where
            ) from None
        except self._errors_caught as exc:
            raise DataError(f"{where}: cannot read from S3: {_first_line(str(exc))}") from None


def is_parquet_name(path: str) -> bool:
    return path.lower().endswith(PARQUET_SUFFIXES)


def is_hidden(path: str) -> bool:
    """Hidden or `_`-prefixed anywhere in the path (`_SUCCESS`, `_delta_log/`, `.tmp/`)."""
    return any(part.startswith((".", "_")) for part in path.split("/"))


def _first_line(message: str) -> str:
    text = message.strip()
    return text.splitlines()[0] if text else "unknown error"
