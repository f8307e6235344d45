"""What is wrong with feedback: a field, a rule, how many rows and the first few."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

if TYPE_CHECKING:
    pass

__all__ = ["FeedbackProblem"]


#: Rows named per problem in an error, and unknown ids listed.
SHOWN: Final = 5


@dataclass(frozen=True)
class FeedbackProblem:
    """Rows of one field that break one rule: how many, and the first few (0-based).
    `count` 0 means the field as a whole (a missing column, a wrong type)."""

    field: str
    rule: str
    count: int = 0
    rows: tuple[int, ...] = ()

    def __str__(self) -> str:
        if not self.count:
            return f"{self.field}: {self.rule}"
        shown = ", ".join(str(r + 1) for r in self.rows)
        more = f" and {self.count - len(self.rows):,} more" if self.count > len(self.rows) else ""
        return f"{self.field}: {self.rule} (row {shown}{more})"

    def fields(self, prefix: str = "feedback") -> list[tuple[str, str]]:
        """(field, rule) pairs naming each shown record, as `feedback[3].label` (0-based,
        like the JSON list)."""
        if not self.rows:
            return [(f"{prefix}[*].{self.field}", self.rule)]
        return [(f"{prefix}[{row}].{self.field}", self.rule) for row in self.rows]

    def to_dict(self) -> dict[str, Any]:
        rows = [row + 1 for row in self.rows]  # as the messages count them
        return {"field": self.field, "rule": self.rule, "count": self.count, "rows": rows}


def _problem(name: str, rule: str, mask: pa.ChunkedArray | pa.Array) -> FeedbackProblem | None:
    rows = pc.indices_nonzero(pc.fill_null(mask, False))
    if not len(rows):
        return None
    return FeedbackProblem(name, rule, len(rows), tuple(rows.slice(0, SHOWN).to_pylist()))


def _listed(problems: Sequence[FeedbackProblem]) -> str:
    shown = "; ".join(str(p) for p in problems[:SHOWN])
    more = f"; and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
    return shown + more
