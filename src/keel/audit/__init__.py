"""What keeps the audit log honest beyond its hash chain: signed checkpoints of its head,
kept in the artifact store (`keel.audit.checkpoints`).

The package works on the stores alone (the audit log, the artifact store, the keys), below
the Workspace, which writes a checkpoint after every `release.audit_checkpoint_every`-th
event whichever service committed it.
"""

__all__: list[str] = []
