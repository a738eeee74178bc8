"""How much memory this process may still use: the machine's, or its container's if that is less."""

from __future__ import annotations

from pathlib import Path

CGROUP_V2 = Path("/sys/fs/cgroup")
CGROUP_V1 = Path("/sys/fs/cgroup/memory")


def available_memory() -> int | None:
    """Bytes that can still be allocated before the kernel or the cgroup limit steps in; None if unknown.

    The machine's figure is MemAvailable; a container's (`docker run -m`) is its
    cgroup limit minus what the cgroup uses, not counting page cache it can drop.
    """
    figures = [figure for figure in (_meminfo_available(), _cgroup_available()) if figure is not None]
    return min(figures) if figures else None


def _meminfo_available(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """MemAvailable of /proc/meminfo in bytes."""
    for line in _read_lines(meminfo):
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def _cgroup_available() -> int | None:
    """Limit minus non-reclaimable use of this process's memory cgroup (v2, else v1); None without a limit."""
    v2 = (CGROUP_V2 / "memory.max", CGROUP_V2 / "memory.current", CGROUP_V2 / "memory.stat", "inactive_file")
    v1 = (CGROUP_V1 / "memory.limit_in_bytes", CGROUP_V1 / "memory.usage_in_bytes", CGROUP_V1 / "memory.stat",
          "total_inactive_file")
    for limit_file, usage_file, stat_file, reclaimable_key in (v2, v1):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        # v1 reports "no limit" as a huge number; v2 as "max" (read as None).
        if limit is None or usage is None or limit >= 1 << 60:
            continue
        reclaimable = 0
        for line in _read_lines(stat_file):
            key, _, value = line.partition(" ")
            if key == reclaimable_key:
                reclaimable = int(value)
        return limit - (usage - reclaimable)
    return None


def _read_int(path: Path) -> int | None:
    """The integer a one-line file holds, or None (missing, unreadable, "max")."""
    lines = _read_lines(path)
    return int(lines[0]) if lines and lines[0].strip().isdigit() else None


def _read_lines(path: Path) -> list[str]:
    """The lines of a small system file, or none if it cannot be read."""
    try:
        return path.read_text().splitlines()
    except OSError:
        return []
