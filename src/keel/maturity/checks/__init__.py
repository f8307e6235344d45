"""Computing the scorecard from the project's real state: keel.yaml, the metadata store, the
artifact store and the project's git repository.

Production means every model version holding the `production` alias now. Items about it
are n/a while no model has one. Each check returns one `Item` with the evidence it found,
in words an operator can verify, and the command (or keel.yaml edit) that fixes it.

One module per part of the scorecard (ownership, reproducibility, release, monitoring,
retraining, data), `production` for what they share, and `scorecard` that runs them all.
"""

from keel.maturity.checks.production import PRODUCTION
from keel.maturity.checks.scorecard import scorecard

__all__ = [
    "PRODUCTION",
    "scorecard",
]
