"""`keel monitor`: windows of logged predictions against the reference, in bounded memory.

    report = monitor(project, model="flights-delay", window=timedelta(days=1))

The log is read in slices (never all at once); each slice's rows go to their window, whose
state is a mergeable sketch plus exact counts and the labelled (score, label) pairs joined
from feedback. So 10 million predictions cost the memory of one slice and one sketch per
window. Windows are cut by prediction time, by the event time the requests carry
(`monitoring.time: event`, for replays and backfills), or every N predictions.

Then, per window: drift of every feature and output against the reference
(`keel.stats.drift.compare_sketches`), schema, null-rate, range and category signals,
volume against the previous windows, performance over the labelled rows. Freshness is
measured at `now`. Signals are stored (`monitor_metrics`), and the alert rules raise and
resolve alerts (`keel.monitoring.alerts`).

`run` holds `monitor`, `plan` how windows are cut, `reading` reads the log into window
states, `judging` turns a state into signals, `serving_skew` adds skew to the newest window,
`freshness` measures ages at `now`, `recording` stores it all. Import from here.
"""

from keel.monitoring.service.plan import DEFAULT_WINDOWS, WindowPlan, parse_window
from keel.monitoring.service.run import monitor

__all__ = [
    "DEFAULT_WINDOWS",
    "WindowPlan",
    "monitor",
    "parse_window",
]
