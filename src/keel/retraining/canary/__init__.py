"""Canary analysis: the version holding `canary` judged against production's over the same
period, then promoted, rolled back, or watched longer.

    analysis = analyze_canary(project, "flights-delay")   # CanaryAnalysis; no side effects
    outcome = act_on_canary(project, "flights-delay")     # CanaryOutcome; acts on the verdict

The period starts when the later of the two holders took its alias (the canary's start, or
production's if it moved since) and ends now. Over it, from the prediction log, per slot
(`canary` rows of the canary's version, `production` rows of production's):

- **failures**: the log holds answered predictions only, and a model that raises answers
  500 and logs nothing, so a failing canary shows as a canary answering less than its
  share of requests (`serving.canary_share`). With `n_c` and `n_p` requests answered, the
  share of its requests the canary failed beyond production's is
  `1 - (n_c / n_p) (1 - share) / share`. Breached when that is at least
  `MAX_EXCESS_FAILURES` and the shortfall is significant (one-sided binomial test of
  `n_c` of `n_c + n_p` at `share`, p below `FAILURE_P_VALUE`); judged once the canary
  should have answered `MIN_SPLIT_REQUESTS`. The first `SPLIT_GRACE` (or three reload
  intervals) after the start is left out: servers take that long to load the canary.
  A version that fails to load on a server (`serving.load_failed` in the audit log since it
  took the alias) is breached at once.
- **latency**: the canary's median request latency over production's, against
  `retraining.canary.rollback.max_latency_ratio` (p99 and its ratio are reported).
- **score drift**: the Kolmogorov-Smirnov distance between the two versions' score
  distributions (`outputs.probability`, else `outputs.prediction`), against
  `rollback.max_score_drift` (None: not judged).
- **performance**: each version's metric (`monitoring.feedback.metric`, else the first of
  `metrics`) on its own labelled predictions, judged once both have `MIN_LABELS` labels;
  breached when the canary's value minus production's, in the metric's better direction, is
  below `rollback.min_performance_delta`.

Latency and score drift are judged once both slots have `min_predictions` predictions.
Verdicts: **rollback** as soon as a judged criterion is breached; **promote** once the
period has lasted `retraining.canary.duration`, both slots have `min_predictions`
predictions and nothing is breached (criteria not judged by then, such as performance
before labels arrive, are named in the reasons); **watch** otherwise.

Acting (`act_on_canary`, through the release service's `keel.release.canary`, so the
gates, approvals, owners and notifications are those of `keel promote`): a rollback removes
`canary` (`canary.rolled_back` with the analysis as evidence, then `alias.removed`, in one
transaction), so production answers every request. A promotion first evaluates the release
gates that guard `production`, recorded with the analysis; if they refuse, the canary is
removed as for a rollback. If `release.approvals` covers `production`, a release request is
opened (once) and the canary keeps serving until someone approves it; the check after the
approval removes the canary. Otherwise `canary.promoted` (the evidence), `production` moved
and `canary` removed, in one transaction. Every change is compare-and-set on the holders the
analysis saw: a second checker acting at the same time gets a conflict (reported as the
`conflict` action, nothing changed), never a second move.

The parts: `criteria` (each rollback criterion on the two slots), `analysis` (the period,
the slots and the verdict; reads only) and `action` (acting on the verdict).
"""

from keel.retraining.canary.action import CanaryOutcome, act_on_canary
from keel.retraining.canary.analysis import CanaryAnalysis, analyze_canary
from keel.retraining.canary.criteria import (
    FAILURE_P_VALUE,
    MAX_EXCESS_FAILURES,
    MIN_SPLIT_REQUESTS,
    SPLIT_GRACE,
    Criterion,
    SlotSummary,
)

__all__ = [
    "FAILURE_P_VALUE",
    "MAX_EXCESS_FAILURES",
    "MIN_SPLIT_REQUESTS",
    "SPLIT_GRACE",
    "CanaryAnalysis",
    "CanaryOutcome",
    "Criterion",
    "SlotSummary",
    "act_on_canary",
    "analyze_canary",
]
