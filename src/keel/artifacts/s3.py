"""The S3 artifact store: content-addressed objects in a bucket, through fsspec/s3fs.

    s3://bucket/prefix/objects/ab/cdef...   the object whose digest is blake3:abcdef...
    s3://bucket/prefix/tmp/<uuid>           uploads in progress; gc removes stale ones
    s3://bucket/prefix/<folder>/<name>      write-once documents (audit/checkpoints/...)

The digest is known only after the last byte, so a put uploads (multipart, bounded
memory) to a temporary key while hashing, then copies it server-side to its final key.
A PUT or copy is atomic per key, so a reader never sees a partial object under its name.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import uuid
from collections.abc import Iterator, Set
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Final
from urllib.parse import urlsplit

from keel.artifacts.base import (
    ArtifactStore,
    GcReport,
    ObjectInfo,
    ProgressCallback,
    PutResult,
    check_document_name,
)
from keel.artifacts.files import corrupt, not_found, write_verified
from keel.artifacts.hashing import CHUNK_SIZE, ReadInto, copy_and_hash, hash_bytes, reader_of
from keel.domain.digest import Digest
from keel.errors import ConfigError, Conflict, DependencyMissing, KeelError, NotFound, StoreError

__all__ = ["S3ArtifactStore"]

#: Multipart part size. S3 allows 10,000 parts, so a stream of unknown length can be up
#: to ~160 GB; put_file picks larger parts for larger files. Memory per upload is about
#: two parts (s3fs's buffer plus the request body).
PART_SIZE: Final = 16 * 1024 * 1024
_MAX_PARTS: Final = 9_000  # below S3's 10,000, leaving room for the last, short part


class S3ArtifactStore(ArtifactStore):
    """Content-addressed objects under `s3://bucket/prefix`.

    Credentials and endpoint come from the arguments or, when omitted, from the standard
    AWS chain (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
    `AWS_ENDPOINT_URL`, `AWS_DEFAULT_REGION`, ~/.aws files, instance roles), read by
    botocore. Any S3-compatible service works through `endpoint_url`.
    """

    backend = "s3"

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        token: str | None = None,
        region: str | None = None,
        part_size: int = PART_SIZE,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise ConfigError(
                f"KEEL_ARTIFACTS: '{url}' is not an S3 location; expected s3://bucket/prefix",
                problems=[("KEEL_ARTIFACTS", "expected s3://bucket/prefix")],
            )
        try:
            import s3fs
            from botocore.exceptions import (
                BotoCoreError,
                ClientError,
            )
        except ImportError:
            raise DependencyMissing("s3fs", "s3", "The S3 artifact store") from None
        self.bucket = parts.netloc
        prefix = parts.path.strip("/")
        self.url = f"s3://{self.bucket}/{prefix}" if prefix else f"s3://{self.bucket}"
        self._keys = f"{prefix}/" if prefix else ""
        self._part_size = part_size
        self._lock_state: str | None = None
        self._errors_caught: tuple[type[BaseException], ...] = (
            OSError,
            BotoCoreError,
            ClientError,
        )
        client_kwargs = {"region_name": region} if region else {}
        # AWS's "standard" retry mode with its default of 3 attempts: retries throttling and
        # transient errors, yet reports an unreachable endpoint in seconds, not tens of them.
        config_kwargs = {"retries": {"mode": "standard", "total_max_attempts": 3}}
        # No instance or listing caches: another process may add or delete objects at any
        # time, and a stale listing would make exists() or gc wrong.
        self._fs: Any = s3fs.S3FileSystem(
            endpoint_url=endpoint_url,
            key=key,
            secret=secret,
            token=token,
            client_kwargs=client_kwargs,
            config_kwargs=config_kwargs,
            skip_instance_cache=True,
            use_listings_cache=False,
        )

    def __repr__(self) -> str:
        return f"S3ArtifactStore({self.url!r})"

    def key_of(self, digest: Digest) -> str:
        """The object's key in the bucket (whether or not it exists)."""
        return f"{self._keys}objects/{digest.hex[:2]}/{digest.hex[2:]}"

    def _path(self, key: str) -> str:
        return f"{self.bucket}/{key}"

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn s3fs/botocore failures into `StoreError`; callers map 404s first."""
        try:
            yield
        except KeelError:
            raise
        except self._errors_caught as exc:
            raise StoreError(f"S3 artifact store {self.url}: cannot {action}: {exc}") from exc

    # --- writing ------------------------------------------------------------------------

    def put_file(self, path: Path, *, progress: ProgressCallback | None = None) -> PutResult:
        with Path(path).open("rb", buffering=0) as source:
            size = os.fstat(source.fileno()).st_size
            part_size = max(self._part_size, math.ceil(size / _MAX_PARTS))
            return self._put(source.readinto, progress, part_size, what=str(path))

    def put_stream(
        self, stream: BinaryIO, *, progress: ProgressCallback | None = None
    ) -> PutResult:
        return self._put(reader_of(stream), progress, self._part_size, what="a stream")

    def _put(
        self, read_into: ReadInto, progress: ProgressCallback | None, part_size: int, *, what: str
    ) -> PutResult:
        """Upload under a temp key, then copy to the final one. A failure anywhere (the
        service gone mid-part, mid-copy) is a StoreError naming `what` and leaves no object
        under a final key, so the caller records nothing and a retry starts afresh."""
        temp = self._path(f"{self._keys}tmp/{uuid.uuid4().hex}")
        with self._errors(f"start uploading {what}"):
            upload = self._fs.open(temp, "wb", block_size=part_size)

        def write(chunk: memoryview) -> None:
            # Only the S3 side becomes StoreError: a failing source stream keeps its own error.
            with self._errors(f"upload {what}"):
                upload.write(chunk)

        try:
            digest, size = copy_and_hash(read_into, write, progress=progress)
            with self._errors(f"upload {what}"):
                upload.close()
        except BaseException:
            with suppress(*self._errors_caught):
                upload.discard()  # aborts the multipart upload: no parts left behind
            upload.closed = True  # or its finaliser would try to commit the rest
            raise
        try:
            existed = self._head(self.key_of(digest)) is not None
            with self._errors(f"store {digest}"):
                # Copy even when the object exists: S3 cannot touch an object, and the copy
                # refreshes LastModified, so gc's grace period protects what we just
                # promised the caller is stored.
                # Server-side, and a multipart copy above 5 GB.
                self._fs.cp_file(temp, self._path(self.key_of(digest)))
        finally:
            # A leftover temp key is only garbage, which gc removes; never fail a put for it.
            with suppress(*self._errors_caught):
                self._fs.rm_file(temp)
        return PutResult(digest=digest, size=size, existed=existed)

    def create_document(self, name: str, data: bytes) -> None:
        key = f"{self._keys}{check_document_name(name)}"
        request: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": data,
            # A conditional put: S3 refuses it when the key exists, so no writer replaces
            # another's document, even racing.
            "IfNoneMatch": "*",
            # Buckets with Object Lock accept a put only with a checksum of its body.
            "ContentMD5": base64.b64encode(hashlib.md5(data).digest()).decode(),  # noqa: S324 - S3's integrity check, not security
        }
        if self._object_lock() == "no-default-retention":
            # Object Lock without a default retention period would protect nothing: a legal
            # hold keeps the document until someone allowed to lift holds lifts it.
            request["ObjectLockLegalHoldStatus"] = "ON"
        try:
            with self._errors(f"store the document {name}"):
                self._fs.call_s3("put_object", **request)
        except StoreError as exc:
            if _precondition_failed(exc):
                raise Conflict(f"the document s3://{self._path(key)} exists already") from None
            raise

    def _object_lock(self) -> str:
        """'off', 'default-retention' (S3 locks every new object) or 'no-default-retention'."""
        if self._lock_state is None:
            try:
                with self._errors("read the bucket's Object Lock configuration"):
                    answer = self._fs.call_s3("get_object_lock_configuration", Bucket=self.bucket)
            except StoreError:
                # Not enabled (ObjectLockConfigurationNotFoundError), or not ours to read.
                self._lock_state = "off"
            else:
                config = answer.get("ObjectLockConfiguration", {})
                if config.get("ObjectLockEnabled") != "Enabled":
                    self._lock_state = "off"
                elif config.get("Rule", {}).get("DefaultRetention"):
                    self._lock_state = "default-retention"
                else:
                    self._lock_state = "no-default-retention"
        return self._lock_state

    def read_document(self, name: str) -> bytes:
        key = f"{self._keys}{check_document_name(name)}"
        try:
            with self._errors(f"read the document {name}"):
                data: bytes = self._fs.cat_file(self._path(key))
        except StoreError as exc:
            if isinstance(exc.__cause__, FileNotFoundError):
                raise NotFound(f"no document s3://{self._path(key)}") from None
            raise
        return data

    def list_documents(self, folder: str) -> list[str]:
        check_document_name(f"{folder}/x")
        start = len(self._keys)
        names = [entry["Key"][start:] for entry in self._list(folder)]
        return sorted(name for name in names if "/" not in name[len(folder) + 1 :])

    # --- reading ------------------------------------------------------------------------

    def _open(self, digest: Digest) -> Any:
        try:
            with self._errors(f"open {digest}"):
                # No read-ahead cache: each read is one ranged GET of the size we ask for.
                return self._fs.open(
                    self._path(self.key_of(digest)),
                    "rb",
                    block_size=CHUNK_SIZE,
                    cache_type="none",
                )
        except StoreError as exc:
            if isinstance(exc.__cause__, FileNotFoundError):
                raise not_found(digest, self.url) from None
            raise

    def get_file(
        self, digest: Digest, dest: Path, *, progress: ProgressCallback | None = None
    ) -> None:
        where = f"s3://{self._path(self.key_of(digest))}"
        with self._open(digest) as reader, self._errors(f"download {digest}"):
            write_verified(reader.readinto, digest, Path(dest), where, progress)

    def read_bytes(self, digest: Digest) -> bytes:
        with self._open(digest) as reader, self._errors(f"download {digest}"):
            data: bytes = reader.read()
        actual = hash_bytes(data)
        if actual != digest:
            raise corrupt(digest, f"s3://{self._path(self.key_of(digest))}", actual)
        return data

    def verify(self, digest: Digest) -> None:
        with self._open(digest) as reader, self._errors(f"download {digest}"):
            actual, _ = copy_and_hash(reader.readinto, None)
        if actual != digest:
            raise corrupt(digest, f"s3://{self._path(self.key_of(digest))}", actual)

    # --- listing and deleting -----------------------------------------------------------

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            with self._errors(f"look up {key}"):
                head: dict[str, Any] = self._fs.call_s3("head_object", Bucket=self.bucket, Key=key)
        except StoreError as exc:
            if isinstance(exc.__cause__, FileNotFoundError):
                return None
            raise
        return head

    def exists(self, digest: Digest) -> bool:
        return self._head(self.key_of(digest)) is not None

    def info(self, digest: Digest) -> ObjectInfo:
        head = self._head(self.key_of(digest))
        if head is None:
            raise not_found(digest, self.url)
        return ObjectInfo(
            digest=digest, size=int(head["ContentLength"]), modified=head["LastModified"]
        )

    def _list(self, folder: str) -> Iterator[dict[str, Any]]:
        """Every key under `prefix/folder/`, page by page (ListObjectsV2)."""
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": f"{self._keys}{folder}/"}
        while True:
            with self._errors(f"list {folder}"):
                page = self._fs.call_s3("list_objects_v2", **request)
            yield from page.get("Contents", [])
            if not page.get("IsTruncated"):
                return
            request["ContinuationToken"] = page["NextContinuationToken"]

    def iter_objects(self) -> Iterator[ObjectInfo]:
        """Every object, in digest order (S3 lists keys sorted). Stray keys are skipped."""
        start = len(f"{self._keys}objects/")
        for entry in self._list("objects"):
            fanout, _, rest = entry["Key"][start:].partition("/")
            try:
                digest = Digest.of_hex(fanout + rest)
            except ValueError:
                continue
            yield ObjectInfo(digest=digest, size=int(entry["Size"]), modified=entry["LastModified"])

    def delete(self, digest: Digest) -> None:
        key = self.key_of(digest)
        if self._head(key) is None:
            raise not_found(digest, self.url)
        with self._errors(f"delete {digest}"):
            self._fs.call_s3("delete_object", Bucket=self.bucket, Key=key)

    def gc(self, keep: Set[Digest], *, grace: timedelta = timedelta(hours=1)) -> GcReport:
        cutoff = datetime.now(UTC) - grace
        temp_removed = self._remove_stale_uploads(cutoff)
        deleted: list[Digest] = []
        freed = kept = 0
        for info in list(self.iter_objects()):
            if info.digest in keep or info.modified >= cutoff:
                kept += 1
                continue
            # Look again just before deleting: a put may have refreshed it since we listed.
            # (S3 has no conditional delete, so a put landing between this look and the
            # delete can still lose its object; the window is one round trip.)
            head = self._head(self.key_of(info.digest))
            if head is None:
                continue  # deleted by someone else meanwhile
            if head["LastModified"] >= cutoff:
                kept += 1
                continue
            with self._errors(f"delete {info.digest}"):
                self._fs.call_s3("delete_object", Bucket=self.bucket, Key=self.key_of(info.digest))
            deleted.append(info.digest)
            freed += info.size
        return GcReport(
            deleted=deleted, freed_bytes=freed, kept=kept, temp_files_removed=temp_removed
        )

    def _remove_stale_uploads(self, cutoff: datetime) -> int:
        """Delete temp keys, and abort multipart uploads to them, started before `cutoff`."""
        removed = 0
        for entry in list(self._list("tmp")):
            if entry["LastModified"] < cutoff:
                with self._errors("delete a stale upload"):
                    self._fs.call_s3("delete_object", Bucket=self.bucket, Key=entry["Key"])
                removed += 1
        with self._errors("list unfinished uploads"):
            uploads = self._fs.call_s3(
                "list_multipart_uploads", Bucket=self.bucket, Prefix=f"{self._keys}tmp/"
            ).get("Uploads", [])
        for upload in uploads:
            if upload["Initiated"] >= cutoff or self._last_part_time(upload) >= cutoff:
                continue  # started recently, or still sending parts: a put in progress
            with self._errors("abort a stale upload"):
                self._fs.call_s3(
                    "abort_multipart_upload",
                    Bucket=self.bucket,
                    Key=upload["Key"],
                    UploadId=upload["UploadId"],
                )
            removed += 1
        return removed

    def _last_part_time(self, upload: dict[str, Any]) -> datetime:
        """When the upload last made progress (its start, if it has no parts yet)."""
        with self._errors("list the parts of an upload"):
            parts = self._fs.call_s3(
                "list_parts", Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            ).get("Parts", [])
        # Only the first page of parts (1,000): enough to tell a live upload from a dead one
        # unless it is older than the grace period and larger than 1,000 parts.
        times: list[datetime] = [upload["Initiated"], *(part["LastModified"] for part in parts)]
        return max(times)


def _precondition_failed(error: BaseException) -> bool:
    """Whether S3 answered 412 (a conditional put found the key taken), however s3fs wrapped
    botocore's error."""
    seen: BaseException | None = error
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "PreconditionFailed" or status == 412:
                return True
        if "pre-conditions you specified did not hold" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
