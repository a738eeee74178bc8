"""The one reader of cgroup files (v2, else v1): CPU quota, memory left, a container's memory counters.

`root` is the cgroup mount (`/sys/fs/cgroup`), or a folder laid out like it in tests.
"""

from __future__ import annotations

from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
# v1 reports "no limit" as a huge number.
UNLIMITED = 1 << 60
# A container's memory counters: peaks first, then current use where the kernel keeps no peak.
MEMORY_COUNTERS = ("memory.peak", "memory.max_usage_in_bytes", "memory.current", "memory.usage_in_bytes")


def read_number(path: Path) -> int | None:
    """The integer at the start of a cgroup file; None if missing, unreadable, "max" or not a number."""
    try:
        first = path.read_text().split()
    except OSError:
        return None
    if not first:
        return None
    try:
        return int(first[0])
    except ValueError:
        return None


def stat_value(path: Path, key: str) -> int | None:
    """The value of `key` in a `key value` per line file such as memory.stat; None if absent."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return None


def cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """CPU quota in cores (cpu.max, else cpu.cfs_quota_us / cpu.cfs_period_us); None if unlimited or unknown."""
    try:
        v2 = root / "cpu.max"
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota_us = read_number(root / "cpu" / "cpu.cfs_quota_us")
        period_us = read_number(root / "cpu" / "cpu.cfs_period_us")
    except (OSError, ValueError):
        return None
    if quota_us is None or period_us is None or quota_us <= 0 or period_us <= 0:
        return None
    return quota_us / period_us


def memory_available(root: Path = CGROUP_ROOT) -> int | None:
    """Bytes the cgroup may still take: its limit minus its use, not counting page cache it can drop.

    None without a limit (or without cgroup files).
    """
    layouts = (
        (root / "memory.max", root / "memory.current", root / "memory.stat", "inactive_file"),
        (root / "memory" / "memory.limit_in_bytes", root / "memory" / "memory.usage_in_bytes",
         root / "memory" / "memory.stat", "total_inactive_file"),
    )
    for limit_file, usage_file, stat_file, reclaimable_key in layouts:
        limit, usage = read_number(limit_file), read_number(usage_file)
        if limit is None or usage is None or limit >= UNLIMITED:
            continue
        return limit - (usage - (stat_value(stat_file, reclaimable_key) or 0))
    return None


def memory_counter_files(folder: Path) -> list[Path]:
    """The memory counters (MEMORY_COUNTERS order) a cgroup folder holds."""
    return [folder / name for name in MEMORY_COUNTERS if (folder / name).is_file()]
