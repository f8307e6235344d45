"""Continuous integration: workflow files for GitHub and GitLab, the training smoke test,
the inference contract test, and the JUnit reports they write.

Each module is imported by the command that needs it (`keel.ci.workflows`, `keel.ci.smoke`,
`keel.ci.contract_test`, `keel.ci.junit`), so importing this package costs nothing.
"""

__all__: list[str] = []
