"""How many CPU cores this process may really use (containers included)."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """CPU quota from cgroup v2 (cpu.max) or v1 (cfs quota/period) in cores; None if unlimited."""
    v2 = root / "cpu.max"
    try:
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        v1_quota = root / "cpu" / "cpu.cfs_quota_us"
        v1_period = root / "cpu" / "cpu.cfs_period_us"
        if v1_quota.is_file() and v1_period.is_file():
            quota_us = int(v1_quota.read_text())
            return None if quota_us <= 0 else quota_us / int(v1_period.read_text())
    except (OSError, ValueError):
        return None
    return None


def available_cpus(root: Path = CGROUP_ROOT) -> int:
    """Cores usable by this process: CPU affinity capped by the cgroup quota, at least 1.

    os.cpu_count() ignores `docker run --cpus=1`; oversubscribing threads under a
    quota makes inference much slower, so the quota is honoured.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cores = min(cores, math.ceil(limit))
    return max(1, cores)
