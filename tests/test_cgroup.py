"""The cgroup reader (CPU quota, memory left, container counters) and what inference makes of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.cgroup import cpu_limit, memory_available, memory_counter_files, read_number
from inference.memory import available_memory, meminfo_available
from inference.threads import available_cpus

GIB = 2**30


@pytest.mark.parametrize(("allowed", "expected"), [({0, 1, 2, 3}, 2), ({3}, 1)])
def test_cgroup_v2_quota_caps_the_affinity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, allowed: set[int], expected: int
) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: allowed)
    assert cpu_limit(tmp_path) == 1.5
    assert available_cpus(tmp_path) == expected  # 1.5 cores round up to 2, never above the affinity


def test_cgroup_v2_unlimited(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpu_limit(tmp_path) is None


@pytest.mark.parametrize(("quota", "expected"), [("100000", 1.0), ("-1", None)])
def test_cgroup_v1_quota(tmp_path: Path, quota: str, expected: float | None) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(quota + "\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu_limit(tmp_path) == expected


def test_one_cpu_quota_gives_one_thread(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    assert available_cpus(tmp_path) == 1


def test_no_cgroup_files_means_affinity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 2, 5})
    assert cpu_limit(tmp_path) is None
    assert available_cpus(tmp_path) == 3


def test_v2_memory_left_is_limit_minus_use_without_reclaimable_cache(tmp_path: Path) -> None:
    (tmp_path / "memory.max").write_text(f"{8 * GIB}\n")
    (tmp_path / "memory.current").write_text(f"{3 * GIB}\n")
    (tmp_path / "memory.stat").write_text(f"anon {2 * GIB}\ninactive_file {GIB}\nactive_file 5\n")
    assert memory_available(tmp_path) == 6 * GIB


def test_v2_without_a_limit_falls_back_to_v1(tmp_path: Path) -> None:
    (tmp_path / "memory.max").write_text("max\n")
    (tmp_path / "memory.current").write_text("100\n")
    assert memory_available(tmp_path) is None
    v1 = tmp_path / "memory"
    v1.mkdir()
    (v1 / "memory.limit_in_bytes").write_text(f"{4 * GIB}\n")
    (v1 / "memory.usage_in_bytes").write_text(f"{GIB}\n")
    (v1 / "memory.stat").write_text(f"total_inactive_file {GIB // 2}\n")
    assert memory_available(tmp_path) == 3 * GIB + GIB // 2


def test_v1_unlimited_is_no_limit(tmp_path: Path) -> None:
    v1 = tmp_path / "memory"
    v1.mkdir()
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (v1 / "memory.usage_in_bytes").write_text("1000\n")
    assert memory_available(tmp_path) is None


def test_the_container_limit_wins_when_it_is_lower_than_the_machine(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 24000000 kB\nMemAvailable: 20000000 kB\n")
    root = tmp_path / "cgroup"
    root.mkdir()
    assert meminfo_available(meminfo) == 20000000 * 1024
    assert available_memory(meminfo, root) == 20000000 * 1024
    (root / "memory.max").write_text(f"{GIB}\n")
    (root / "memory.current").write_text(f"{GIB // 4}\n")
    assert available_memory(meminfo, root) == GIB - GIB // 4
    assert available_memory(tmp_path / "absent", tmp_path / "absent") is None


def test_container_counters_peak_first_and_unreadable_values(tmp_path: Path) -> None:
    for name, value in (("memory.current", "10"), ("memory.peak", "20 \n"), ("memory.stat", "x 1")):
        (tmp_path / name).write_text(value)
    assert [p.name for p in memory_counter_files(tmp_path)] == ["memory.peak", "memory.current"]
    assert read_number(tmp_path / "memory.peak") == 20
    (tmp_path / "garbled").write_text("twenty")
    assert read_number(tmp_path / "garbled") is None
    assert read_number(tmp_path / "missing") is None
