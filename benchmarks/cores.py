"""Pinning a benchmark, and every process it starts, to a few cores."""

from __future__ import annotations

import os


def pin_to_cores(count: int) -> list[int]:
    """Restrict this process, and every process it starts, to the last `count` of its allowed cores."""
    chosen = sorted(os.sched_getaffinity(0))[-count:]
    os.sched_setaffinity(0, chosen)
    return chosen
