"""The user's code as keel records it, for lineage and reproduction: a shared service below
models, the pipeline, lineage, maturity and serving, which all import it from here.

    entrypoints  which source files an entry point loads, their fingerprint, and loading it
    usercode     calling the user's code: its failures reported as theirs, with file and line
    git          the commit, branch and uncommitted changes of the project folder
    environment  the runtime environment's lock (interpreter, packages, platform)
"""

__all__: list[str] = []
