"""The training pipeline: steps, caching, and the capture of environment and code for lineage."""

__all__: list[str] = []
