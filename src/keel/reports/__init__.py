"""Reports that keel's checks write for other tools to read: JUnit XML for CI systems.

Below every check that writes one (data contracts, the smoke test, the inference contract test),
so that the pure contract code can render its results without reaching up into `keel.ci`.
"""

__all__: list[str] = []
