"""What every benchmark prints about the machine it ran on."""

from __future__ import annotations

import os
import platform
from pathlib import Path

__all__ = ["machine_summary"]


def machine_summary(*extras: str) -> str:
    """`2 cores (AMD EPYC), Python 3.11.7, Linux 6.x, ...extras`."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    parts = [
        f"{os.cpu_count()} cores ({model})",
        f"Python {platform.python_version()}",
        f"Linux {platform.release()}",
        *extras,
    ]
    return ", ".join(parts)
