"""Registered versions loaded from the artifact store: signature first, then hash, then code.

    loaded = load_model(project, version)   # verified, loaded, and kept by the open project
    sign_version(project, version)          # for versions registered before keel signed

Every service that scores a version (serving, release gates, monitoring, retraining) loads
it here, so a package is never loaded without its signature checked. The packages loaded
are kept per open project (`Workspace.keep`): a server switching back (rollback) or a gate
scoring the champion again pays nothing.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections import OrderedDict
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from keel.errors import IntegrityError

if TYPE_CHECKING:
    from keel.domain.digest import Digest
    from keel.domain.model import ModelVersion
    from keel.keys import Verifier
    from keel.models.package import LoadedModel
    from keel.workspace import Workspace

__all__ = ["ModelLoader", "forget_loaded_models", "load_model", "loader", "sign_version"]

_log = logging.getLogger(__name__)


class ModelLoader:
    """The model packages one open project has loaded, and the checks before loading one."""

    #: Loaded model packages kept per open project (by content digest, so never stale).
    CACHE_SIZE = 8

    def __init__(self, project: Workspace) -> None:
        self._project = project
        self._models: OrderedDict[Digest, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, version: ModelVersion) -> LoadedModel:
        """A registered version's package, verified by signature and hash, then loaded.

        The version's signature (the project's key over its name, number, package digest
        and flavor) is checked against the trusted public keys of `KEEL_KEYS` before
        anything of the package is read, since loading runs the packaged feature code:
        `IntegrityError` naming the version for an unsigned version (unless
        `release.unsigned_packages` is `warn`), a bad signature or an untrusted key.

        The last `CACHE_SIZE` packages loaded stay in memory for the life of the open
        project: packages are content-addressed, so a kept one can never be stale.
        """
        # Checked on every call, cache hit or not: a version re-pointed in the database at a
        # package loaded earlier for another version must still be refused.
        self._check_signature(version)
        with self._lock:
            cached = self._models.get(version.package)
            if cached is not None:
                self._models.move_to_end(version.package)
                return cached
        from keel.models.package import load_package

        data = self._project.artifacts.read_bytes(version.package)  # verified against its digest
        handle, name = tempfile.mkstemp(prefix="model-", suffix=".tar", dir=self._tmp_dir())
        try:
            with os.fdopen(handle, "wb") as out:  # a scratch copy: no fsync needed
                out.write(data)
            loaded = load_package(Path(name))
        except IntegrityError as exc:
            # Signed, yet refused (the allow-list, a file not matching model.json): name the
            # version, since the package's own messages know only its files.
            raise IntegrityError(f"{version.ref}: {exc.message}", hint=exc.hint) from None
        finally:
            Path(name).unlink(missing_ok=True)
        with self._lock:
            self._models[version.package] = loaded
            while len(self._models) > self.CACHE_SIZE:
                self._models.popitem(last=False)
        return loaded

    def sign(self, version: ModelVersion) -> ModelVersion:
        """Sign `version` with the project's signing key and store the signature, with an
        audit event: for versions registered before keel signed packages, once reviewed."""
        from keel.models.package import package_manifest, untrusted_package_types
        from keel.models.signing import sign_version

        project = self._project
        signer = project.keys.signer(create=False)
        # The package must exist, match its digest and hold only loadable types: a signature
        # says this version may be loaded, so it is never given to what would be refused.
        with tempfile.TemporaryDirectory(prefix="keel-sign-", dir=self._tmp_dir()) as folder:
            path = Path(folder) / "model.tar"
            path.write_bytes(project.artifacts.read_bytes(version.package))
            refused = untrusted_package_types(package_manifest(path))
        if refused:
            raise IntegrityError(
                f"{version.ref} was not signed: its estimator references types keel does not "
                f"load: {', '.join(refused)}"
            )
        signature = sign_version(signer, version)
        return project.metadata.models.record_signature(
            version.model, version.version, signature, actor=project.settings.user
        )

    def forget(self) -> None:
        """Drop the loaded packages kept (they are loaded again on next use)."""
        with self._lock:
            self._models.clear()

    def _tmp_dir(self) -> Path:
        folder = self._project.settings.state_dir / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _check_signature(self, version: ModelVersion) -> None:
        from keel.models.signing import verify_version

        release = self._project.spec.release
        if version.signature is None and release.unsigned_packages == "warn":
            _log.warning(
                "loading %s UNSIGNED (release.unsigned_packages: warn): its package and the "
                "code in it are trusted on the metadata store's word alone; sign it with "
                "`keel models sign %s` after review",
                version.ref,
                version.ref,
            )
            return
        verify_version(self._verifier, version)

    @cached_property
    def _verifier(self) -> Verifier:
        # Read once per open project: a server picks up a new trusted key on restart.
        return self._project.keys.verifier()


def loader(project: Workspace) -> ModelLoader:
    """The open project's loader (one per open project, made on first use)."""
    return project.keep(ModelLoader, lambda: ModelLoader(project))


def load_model(project: Workspace, version: ModelVersion) -> LoadedModel:
    """`version`'s package, verified and loaded (see `ModelLoader.load`)."""
    return loader(project).load(version)


def sign_version(project: Workspace, version: ModelVersion) -> ModelVersion:
    """Sign a reviewed, unsigned version (see `ModelLoader.sign`)."""
    return loader(project).sign(version)


def forget_loaded_models(project: Workspace) -> None:
    """Drop the packages the open project keeps loaded."""
    loader(project).forget()
