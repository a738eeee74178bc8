"""CPU quota detection (docker run --cpus) for thread pool sizing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from inference.threads import available_cpus, cgroup_cpu_limit


@pytest.mark.parametrize(("allowed", "expected"), [({0, 1, 2, 3}, 2), ({3}, 1)])
def test_cgroup_v2_quota_caps_the_affinity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, allowed: set[int], expected: int
) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: allowed)
    assert cgroup_cpu_limit(tmp_path) == 1.5
    assert available_cpus(tmp_path) == expected  # 1.5 cores round up to 2, never above the affinity


def test_cgroup_v2_unlimited(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None


@pytest.mark.parametrize(("quota", "expected"), [("100000", 1.0), ("-1", None)])
def test_cgroup_v1_quota(tmp_path: Path, quota: str, expected: float | None) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(quota + "\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_limit(tmp_path) == expected


def test_one_cpu_quota_gives_one_thread(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    assert available_cpus(tmp_path) == 1


def test_no_cgroup_files_means_affinity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 2, 5})
    assert cgroup_cpu_limit(tmp_path) is None
    assert available_cpus(tmp_path) == 3
