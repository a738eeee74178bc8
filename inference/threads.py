"""How many CPU cores this process may really use (containers included)."""

from __future__ import annotations

import math
import os
from pathlib import Path

from common.cgroup import CGROUP_ROOT, cpu_limit


def available_cpus(root: Path = CGROUP_ROOT) -> int:
    """Cores usable by this process: CPU affinity capped by the cgroup quota, at least 1.

    os.cpu_count() ignores `docker run --cpus=1`; oversubscribing threads under a
    quota makes inference much slower, so the quota is honoured.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = cpu_limit(root)
    if limit is not None:
        cores = min(cores, math.ceil(limit))
    return max(1, cores)
