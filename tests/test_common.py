"""Atomic writes and Dice, which every package uses."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest

from common.atomic import atomic_file, atomic_path, write_atomic
from common.label_boxes import label_boxes
from common.overlap import dice, label_dice


def test_a_write_that_fails_leaves_the_earlier_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out" / "case.npz"
    write_atomic(target, b"first")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as handle:
            handle.write(b"half of a second")
            raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["case.npz"]


def test_writes_are_readable_by_others_and_temporaries_are_hidden(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".record.json.") and tmp.suffix == ".tmp"
        tmp.write_text("{}")
        assert not target.exists()
    assert target.read_text() == "{}"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert write_atomic(tmp_path / "a.txt", "text").read_text() == "text"


def test_dice_counts_and_empty_masks() -> None:
    a = np.zeros((4, 5), dtype=bool)
    b = np.zeros((4, 5), dtype=bool)
    assert dice(a, b) == 1.0
    assert np.isnan(dice(a, b, both_empty=np.nan))
    a[0, :4] = True  # 4 pixels
    b[0, 2:] = True  # 3 pixels, 2 shared
    assert dice(a, b) == pytest.approx(2 * 2 / 7)
    assert dice(a, np.zeros_like(a)) == 0.0
    with pytest.raises(ValueError, match="different shapes"):
        dice(a, b[:, :4])


def test_label_dice_per_label_of_two_maps() -> None:
    a = np.array([[1, 1, 0], [2, 0, 0]])
    b = np.array([[1, 0, 0], [0, 0, 3]])
    assert label_dice(a, b) == [pytest.approx(2 / 3), 0.0, 0.0]
    assert label_dice(np.zeros((2, 2), int), np.zeros((2, 2), int)) == []


def test_label_boxes_are_inclusive_and_x_first_in_2d_and_3d() -> None:
    labels = np.zeros((6, 8), dtype=np.uint16)
    labels[1:3, 2:7] = 1
    labels[4, 0] = 2
    assert label_boxes(labels).tolist() == [[2, 1, 6, 2], [0, 4, 0, 4]]
    volume = np.zeros((4, 6, 8), dtype=np.uint16)
    volume[2, 1:3, 2:7] = 1
    volume[0:4, 5, 7] = 2
    assert label_boxes(volume).tolist() == [[2, 1, 2, 6, 2, 2], [7, 5, 0, 7, 5, 3]]
    assert label_boxes(volume, 1).tolist() == [[2, 1, 2, 6, 2, 2]]
    assert label_boxes(np.zeros((3, 3), dtype=np.uint16)).shape == (0, 4)


def test_label_boxes_name_the_missing_object_numbers() -> None:
    labels = np.zeros((3, 3), dtype=np.uint16)
    labels[0, 0] = 2
    with pytest.raises(ValueError, match=r"numbered 1\.\.2 without gaps; no voxel has \[1\]"):
        label_boxes(labels)
    with pytest.raises(ValueError, match=r"numbered 1\.\.3 without gaps; no voxel has \[1, 3\]"):
        label_boxes(labels, 3)
