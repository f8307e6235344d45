"""Production monitoring: reference profiles, windows of logged predictions, drift and data
quality signals, delayed feedback, training-serving skew, freshness, alerts, Prometheus
exports and reports.

Import the submodules directly (`keel.monitoring.feedback`, `keel.monitoring.service`, ...):
this package imports nothing on its own, so a command pays only for what it uses.
"""

__all__: list[str] = []
