"""Reports that keel writes for other tools and people to read: JUnit XML for CI systems
(`keel.reports.junit`), and the Jinja2 environment and templates of keel's HTML pages
(`keel.reports.html`), shared by the HTML reports and the web UI.

Below every check that writes one (data contracts, the smoke test, the inference contract test),
so that the pure contract code can render its results without reaching up into `keel.ci`.
"""

__all__: list[str] = []
