"""The maturity scorecard: how far a project is from reproducible, controlled, monitored
and operated releases, computed from its real state, with the fix for every gap.

    card = scorecard(project)
    card.level_name, card.score, card.max_score
    [(item.key, item.status, item.evidence, item.fix) for item in card.items]
"""

from keel.maturity.checks import scorecard
from keel.maturity.model import ITEM_POINTS, LEVELS, Item, Level, Scorecard, Status

__all__ = ["ITEM_POINTS", "LEVELS", "Item", "Level", "Scorecard", "Status", "scorecard"]
