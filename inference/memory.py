"""How much memory this process may still use: the machine's, or its container's if that is less."""

from __future__ import annotations

import ctypes
import resource
from pathlib import Path

from common.cgroup import CGROUP_ROOT, memory_available

MEMINFO = Path("/proc/meminfo")
# mallopt's parameter number for the mmap threshold (malloc.h), and the threshold set.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 2**20


def available_memory(meminfo: Path = MEMINFO, cgroup_root: Path = CGROUP_ROOT) -> int | None:
    """Bytes that can still be allocated before the kernel or the cgroup limit steps in; None if unknown.

    The machine's figure is MemAvailable; a container's (`docker run -m`) is its
    cgroup limit minus what the cgroup uses, not counting page cache it can drop.
    """
    figures = [figure for figure in (meminfo_available(meminfo), memory_available(cgroup_root)) if figure is not None]
    return min(figures) if figures else None


def meminfo_available(meminfo: Path = MEMINFO) -> int | None:
    """MemAvailable of /proc/meminfo in bytes; None if it cannot be read."""
    try:
        lines = meminfo.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def return_large_blocks_to_the_system() -> bool:
    """Have glibc give every freed block of 1 MiB or more straight back to the system; False where it cannot.

    glibc serves large blocks (slice embeddings: 4 MiB) from mmap, but after the first
    is freed it raises that threshold and serves later ones from the heap, which keeps
    freed memory and so the peak RSS higher (16 MB on a 12-object 181-slice volume).
    A fixed threshold keeps them on mmap.
    """
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
