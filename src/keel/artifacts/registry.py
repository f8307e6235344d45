"""Choose an artifact store backend from a URL (the `KEEL_ARTIFACTS` setting)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from keel.artifacts.base import ArtifactStore
from keel.errors import ConfigError

__all__ = ["KNOWN_SCHEMES", "open_artifact_store"]

#: The setting an artifact store URL comes from, named in error messages.
SETTING = "KEEL_ARTIFACTS"


def _open_local(url: str, options: Mapping[str, str]) -> ArtifactStore:
    from keel.artifacts.local import LocalArtifactStore

    if options:
        raise ConfigError(
            f"{SETTING}: the local artifact store takes no options, got {sorted(options)}",
            problems=[(SETTING, "a local folder takes no options")],
        )
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(
                f"{SETTING}: file URL '{url}' names host '{parts.netloc}'; only local paths "
                "work (file:///absolute/path)",
                problems=[(SETTING, "file URLs must be local: file:///path")],
            )
        return LocalArtifactStore(Path(unquote(parts.path)))
    return LocalArtifactStore(Path(url))


_S3_OPTIONS = ("endpoint_url", "key", "secret", "token", "region")


def _open_s3(url: str, options: Mapping[str, str]) -> ArtifactStore:
    from keel.artifacts.s3 import S3ArtifactStore

    unknown = sorted(set(options) - set(_S3_OPTIONS))
    if unknown:
        raise ConfigError(
            f"{SETTING}: unknown S3 options {unknown}; known: {', '.join(_S3_OPTIONS)}",
            problems=[(SETTING, f"unknown S3 option '{name}'") for name in unknown],
        )
    return S3ArtifactStore(
        url,
        endpoint_url=options.get("endpoint_url"),
        key=options.get("key"),
        secret=options.get("secret"),
        token=options.get("token"),
        region=options.get("region"),
    )


_BACKENDS: dict[str, Callable[[str, Mapping[str, str]], ArtifactStore]] = {
    "file": _open_local,
    "s3": _open_s3,
}
#: URL schemes `open_artifact_store` understands; a plain path means `file`.
KNOWN_SCHEMES: tuple[str, ...] = tuple(_BACKENDS)


def open_artifact_store(url: str, options: Mapping[str, str] | None = None) -> ArtifactStore:
    """The store at `url`: a folder (`/path`, `file:///path`) or `s3://bucket/prefix`.

    `options` go to the backend (for S3: `endpoint_url`, `key`, `secret`, `token`,
    `region`); without them S3 uses the standard AWS environment variables and files.
    """
    text = url.strip()
    if not text:
        raise ConfigError(
            f"{SETTING} is empty; give a folder or s3://bucket/prefix",
            problems=[(SETTING, "must not be empty")],
        )
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    if not scheme:
        return _open_local(text, options or {})
    opener = _BACKENDS.get(scheme)
    if opener is None:
        known = ", ".join(f"{name}://" for name in KNOWN_SCHEMES)
        raise ConfigError(
            f"{SETTING}: unknown scheme '{scheme}://' in '{text}'; known schemes: {known} "
            "(or a plain folder path)",
            problems=[(SETTING, f"unknown scheme '{scheme}'; known: {known}")],
        )
    return opener(text, options or {})
