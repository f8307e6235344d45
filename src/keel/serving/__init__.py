"""Online serving: `keel serve`, the Open Inference Protocol, canary and shadow, hot reload,
and the prediction log."""

__all__: list[str] = []
