"""Who acts when a verb runs: the one conversion from what a caller passes to an `Actor`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.domain.identity import Actor

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["ActorLike", "acting", "acting_name"]

#: What every verb's `actor` takes: an `Actor` as given (the HTTP API passes its token's
#: user), a user name (acting with that user's recorded roles), or None for the project's
#: user (KEEL_USER, else the OS user), as the CLI acts.
ActorLike = Actor | str | None


def acting(project: Workspace, actor: ActorLike) -> Actor:
    if isinstance(actor, Actor):
        return actor
    from keel.release.service import actor_for

    return actor_for(project, actor)


def acting_name(project: Workspace, actor: ActorLike) -> str:
    """The acting user's name, for services that record a name only (no roles to read)."""
    if isinstance(actor, Actor):
        return actor.name
    return actor or project.settings.user
