"""`project.skew()`: training-serving skew of a window of logged predictions, with a verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.monitoring.skew import FeatureSkew, SkewReport
    from keel.workspace import Workspace

__all__ = ["SkewCheck", "skew"]


@dataclass(frozen=True)
class SkewCheck:
    """The skew of one window (`report`: distribution and row-level skew, as
    `keel.monitoring.skew.SkewReport`) judged against `max_mismatch`: `ok` is false when a
    feature mismatches in a larger share of the compared rows (`above`)."""

    report: SkewReport
    window: timedelta
    max_mismatch: float

    @property
    def above(self) -> list[FeatureSkew]:
        return self.report.row.above(self.max_mismatch)

    @property
    def ok(self) -> bool:
        return not self.above

    def to_dict(self) -> dict[str, Any]:
        from keel.domain.duration import format_duration

        return {
            "window": format_duration(self.window),
            "max_mismatch": self.max_mismatch,
            "above": [f.feature for f in self.above],
            **self.report.to_dict(),
        }


def skew(
    project: Workspace,
    model: str,
    *,
    version: int | None = None,
    since: timedelta | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    source: str | None = None,
    entity_key: Sequence[str] | None = None,
    max_mismatch: float = 0.01,
    test: str | None = None,
    threshold: float | None = None,
    tolerance: float = 1e-9,
    limit: int | None = None,
) -> SkewCheck:
    """Training-serving skew of `model` (`NAME`, or `NAME@VERSION|ALIAS` without `version`)
    over the predictions logged from `start` (default: `since`, else keel.yaml's
    monitoring.window, before `end`) to `end` (default: now), as `keel skew`: the serving
    features against the training features, and each request carrying the entity key against
    its offline row in `source` (default: the version's training data). `version` defaults to
    the one that answered most of the window's requests. Reads only.

    `result.ok` is false when a feature mismatches in more than `max_mismatch` of the rows.
    `since` with `start`, or a version named twice, is a `ConfigError` naming the field; a
    window in which no request could be compared with an offline row is `NotFound`."""
    from keel.domain.digest import Digest
    from keel.errors import ConfigError, NotFound
    from keel.monitoring.skew import skew_report

    if since is not None and start is not None:
        raise ConfigError(
            "since and start both say where the window starts: pass one of them",
            problems=[("since", "conflicts with start")],
        )
    until = end or datetime.now(UTC)
    begin = start or until - (since if since is not None else project.spec.monitoring.window)
    name, number = model, version
    if "@" in model:
        if version is not None:
            raise ConfigError(
                f"model {model} names a version and version {version} another: pass one",
                problems=[("version", "conflicts with model NAME@VERSION")],
            )
        resolved = project.metadata.models.resolve(model)
        name, number = resolved.model, resolved.version
    report = skew_report(
        project,
        name,
        start=begin,
        end=until,
        version=number,
        entity_key=entity_key,
        source=source,
        tolerance=tolerance,
        test=test,
        threshold=threshold,
        limit=limit,
    )
    rows = report.row
    if rows.compared == 0:
        raise NotFound(
            f"no logged request of {rows.ref} could be compared with an offline row: of "
            f"{rows.predictions:,} in the window, {rows.without_key:,} carry no entity key "
            f"({', '.join(rows.entity_key)}), {rows.without_match:,} have a key dataset "
            f"{Digest.parse(rows.source).short} does not hold, {rows.ambiguous:,} a key it "
            "holds several times",
            hint="pass --source with a dataset version snapshotted after these requests "
            "(`keel data snapshot`, then --source latest)",
        )
    return SkewCheck(report, until - begin, max_mismatch)
