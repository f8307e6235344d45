"""Helpers shared by the metadata tests and the processes they spawn.

Process bodies live here, not in test modules, so that a spawned child imports only keel.
"""

from __future__ import annotations

import hashlib
import traceback
from collections.abc import Callable
from typing import Any

from keel.domain.digest import Digest
from keel.metadata import open_metadata_store


def digest_of(name: str) -> Digest:
    """A well-formed, distinct digest per name (the hash function does not matter here)."""
    return Digest.of_hex(hashlib.sha256(name.encode()).hexdigest())


def report(results: Any, name: str, body: Callable[..., None], *args: Any) -> None:
    """Process target: run `body`, then put `(name, None)` or `(name, traceback)`."""
    try:
        body(*args)
    except BaseException:
        results.put((name, traceback.format_exc()))
        raise
    results.put((name, None))


def record_many(url: str, worker: int, count: int, barrier: Any) -> None:
    """Open the store, wait for the others, then record `count` held objects."""
    with open_metadata_store(url) as store:
        barrier.wait(timeout=60)
        for i in range(count):
            store.artifacts.record(
                digest_of(f"{worker}/{i}"),
                size=i,
                media_type="application/octet-stream",
                actor=f"worker-{worker}",
                holder=f"test:{worker}/{i}",
            )


def open_fresh(url: str, barrier: Any) -> None:
    """Open (and so migrate) a database at the same moment as the other processes."""
    barrier.wait(timeout=60)
    with open_metadata_store(url) as store:
        revision = store.revision()
    if not revision.up_to_date:
        raise AssertionError(f"not at head after open: {revision}")


def record_then_hold(url: str, count: int, barrier: Any, done: Any) -> None:
    """Record each object unheld, then hold it, while another process forgets them."""
    try:
        with open_metadata_store(url) as store:
            barrier.wait(timeout=60)
            for i in range(count):
                digest = digest_of(f"race/{i}")
                store.artifacts.record(digest, size=1, media_type="x", actor="recorder")
                store.artifacts.record(
                    digest, size=1, media_type="x", actor="recorder", holder=f"test:{i}"
                )
    finally:
        done.set()


def forget_until_done(url: str, count: int, barrier: Any, done: Any) -> None:
    """Keep forgetting every object the recorder makes until it has finished."""
    digests = [digest_of(f"race/{i}") for i in range(count)]
    with open_metadata_store(url) as store:
        barrier.wait(timeout=60)
        while not done.is_set():
            store.artifacts.forget(digests)


def promote_racing(url: str, model: str, version: int, barrier: Any, outcomes: Any) -> None:
    """Read the alias holder, wait until every racer has read it, then try to move it.

    Every racer decides against the same holder, as two `keel promote` runs whose gate
    evaluations overlap do; the compare-and-set must let exactly one through.
    """
    from keel.errors import Conflict

    with open_metadata_store(url) as store:
        holder = store.releases.holder(model, "production")
        barrier.wait(timeout=60)
        try:
            store.releases.move_alias(
                model,
                "production",
                version,
                expected_holder=holder,
                actor=f"racer-{version}",
                reason="race",
            )
        except Conflict as exc:
            outcomes.put((version, f"conflict: {exc.message}"))
        else:
            outcomes.put((version, "won"))
