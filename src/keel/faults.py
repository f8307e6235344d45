"""Named points where a test can stop keel, to kill it in a window it could not hit by timing.

`KEEL_TEST_PAUSE_AT=train.registered` makes a process that reaches that point write a line
`keel: paused at train.registered` to stderr and sleep until it is killed. Like every
`KEEL_TEST_*` variable it is read from the environment directly, never through settings: it
exists for tests of crash consistency (tests/test_kills.py), and costs one dictionary lookup
when unset.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Final

__all__ = ["PAUSE_VARIABLE", "pause_point"]

PAUSE_VARIABLE: Final = "KEEL_TEST_PAUSE_AT"


def pause_point(name: str) -> None:
    """Sleep here forever if `KEEL_TEST_PAUSE_AT` names this point."""
    if os.environ.get(PAUSE_VARIABLE) != name:
        return
    sys.stderr.write(f"keel: paused at {name}\n")
    sys.stderr.flush()
    while True:
        time.sleep(60)
