"""Pure entities and value objects of keel. Imports nothing from storage, web or CLI code."""

from keel.domain.digest import Digest

__all__ = ["Digest"]
