"""Continuous integration: workflow files for GitHub and GitLab, the training smoke test and
the inference contract test (their JUnit reports are written by `keel.reports.junit`).

Each module is imported by the command that needs it (`keel.ci.workflows`, `keel.ci.smoke`,
`keel.ci.contract_test`), so importing this package costs nothing.
"""

__all__: list[str] = []
