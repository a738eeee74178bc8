"""`--profile`: the profiler counts the model calls of each case, and the file follows the schema read_profile reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import inference.__main__ as cli
from inference.profiling import STAMPS, Profiler, read_profile
from tests.helpers import echo_segmenter


def write_cases(folder: Path) -> None:
    """A 2D case with three boxes, a broken case, a 3D case with one box over all six slices."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savez_compressed(folder / "2DBox_US_0001.npz", imgs=rng.integers(0, 255, (128, 96, 3), dtype=np.uint8),
                        boxes=np.array([[5, 5, 40, 60], [10, 20, 90, 120], [0, 0, 95, 127]]))
    np.savez_compressed(folder / "2DBox_US_0002.npz", imgs=np.zeros((8, 8, 3), np.uint8))
    np.savez_compressed(folder / "3DBox_MR_0003.npz", imgs=rng.integers(0, 255, (6, 64, 64), dtype=np.uint8),
                        boxes=np.array([[5, 5, 0, 40, 40, 5]]), spacing=np.array([3.0, 1.0, 1.0]))


def test_the_profile_counts_each_written_case_s_own_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cases(tmp_path / "in")
    monkeypatch.setattr(cli, "build_segmenter", echo_segmenter())
    status = cli.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--no-progress",
                       "--profile", str(tmp_path / "profile.json")])
    assert status == 1  # the broken case

    profile = read_profile(tmp_path / "profile.json")
    assert list(profile.stamps) == list(STAMPS)
    assert [profile.stamps[s] for s in STAMPS] == sorted(profile.stamps.values())
    assert profile.load_seconds >= 0
    assert [c.case for c in profile.cases] == ["2DBox_US_0001.npz", "3DBox_MR_0003.npz"]
    flat, volume = profile.cases
    # 2D: one encoder call, the three boxes in one decoder call (the echo backend's batch is 16).
    assert (flat.calls.encoder.calls, flat.calls.decoder.calls, flat.calls.decoder.items) == (1, 1, 3)
    assert flat.calls.new_images.calls == 1
    # 3D: every slice encoded once and decoded once; the broken case between them added nothing.
    assert (volume.calls.encoder.calls, volume.calls.decoder.items, volume.calls.new_images.calls) == (6, 6, 6)
    for case in profile.cases:
        assert 0 <= case.read <= case.seconds and 0 <= case.write <= case.seconds
        assert case.other_seconds >= -1e-6


def test_the_file_round_trips_and_a_foreign_file_is_refused(tmp_path: Path) -> None:
    profiler = Profiler()
    profiler.case_ended("2DBox_US_0001.npz", 1.5, 0.25, 0.125, written=True)
    profiler.case_ended("2DBox_US_0002.npz", 0.5, 0.0, 0.0, written=False)
    path = tmp_path / "profile.json"
    profiler.save(path)
    raw = json.loads(path.read_text())
    assert set(raw) == {"stamps", "cases"}
    assert raw["cases"][0] == {"case": "2DBox_US_0001.npz", "seconds": 1.5, "read": 0.25, "write": 0.125,
                               "encoder": {"calls": 0, "items": 0, "seconds": 0.0},
                               "decoder": {"calls": 0, "items": 0, "seconds": 0.0},
                               "new_images": {"calls": 0, "items": 0, "seconds": 0.0}}
    assert read_profile(path).to_json() == path.read_text()

    path.write_text(json.dumps({"stamps": {}, "cases": [{"case": "x"}]}))
    with pytest.raises(ValueError, match="profile.json: not a --profile file"):
        read_profile(path)
    with pytest.raises(ValueError, match="unknown stamp"):
        profiler.stamp("halfway")
