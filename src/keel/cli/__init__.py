"""The `keel` command line: thin commands that parse, call a Project service, and render."""
