"""Rows the store refused for their content, set aside so that one bad row never stops the
prediction log: a dead-letter file of JSON lines (one per row, with the store's error), a log
line, and for operators an event in the audit log."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from keel.domain.prediction import LoggedPrediction
from keel.predlog.log import DeadLettered

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = ["ALERT_EVERY", "dead_letter_alert", "set_aside"]

_log = logging.getLogger(__name__)

#: At most one dead-letter event in the audit log this often, per server (seconds).
ALERT_EVERY: Final = 60.0


def set_aside(rows: Sequence[LoggedPrediction], reason: str, folder: Path | None) -> Path | None:
    """Append the refused rows to today's dead-letter file in `folder` and log them: the
    file written, or None (no folder, or it could not be written: the log line then carries
    the rows, the only copy left)."""
    path = None
    lines = [
        json.dumps(
            {
                "dead_lettered_at": datetime.now(UTC).isoformat(),
                "error": reason,
                "prediction": _row_document(row),
            },
            default=str,
        )
        for row in rows
    ]
    if folder is not None:
        path = folder / f"{datetime.now(UTC):%Y-%m-%d}.jsonl"
        try:
            # Owner only, as the spool: refused rows carry the requests' inputs.
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(descriptor, "a", encoding="utf-8") as file:
                file.write("".join(line + "\n" for line in lines))
                file.flush()
                os.fsync(file.fileno())
        except OSError as exc:
            _log.error("could not write the dead-letter file %s: %s", path, exc)
            path = None
    if path is not None:
        _log.error(
            "prediction log: the store refused %d row(s) (%s); set aside in %s",
            len(rows),
            reason,
            path,
        )
    else:  # the log line is the only copy left
        _log.error(
            "prediction log: the store refused %d row(s) (%s): %s",
            len(rows),
            reason,
            " ".join(lines),
        )
    return path


def _row_document(row: LoggedPrediction) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "model": row.model,
        "version": row.version,
        "slot": row.slot,
        "inputs": row.inputs,
        "outputs": row.outputs,
        "latency_ms": row.latency_ms,
        "client_id": row.client_id,
        "shadow_of": row.shadow_of,
    }


def dead_letter_alert(project: Workspace) -> Callable[[DeadLettered], None]:
    """An alert for operators when rows are set aside: a `serving.predictions_dead_lettered`
    event in the audit log, which webhooks deliver like every other event. At most one a
    minute per server (a stream of bad rows must not flood the audit log); each counts the
    rows set aside since the previous one."""
    import socket

    actor = f"keel-serve@{socket.gethostname()}"
    last = -ALERT_EVERY
    unreported = 0

    def alert(dead: DeadLettered) -> None:
        nonlocal last, unreported
        unreported += dead.rows
        now = time.monotonic()
        if now - last < ALERT_EVERY:
            return
        project.metadata.audit.record(
            actor=actor,
            kind="serving.predictions_dead_lettered",
            model=dead.model,
            version=dead.version,
            reason=dead.error[:500],
            evidence={
                "rows": unreported,
                "file": None if dead.path is None else str(dead.path),
                "host": socket.gethostname(),
            },
        )
        last, unreported = now, 0

    return alert
