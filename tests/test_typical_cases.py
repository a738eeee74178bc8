"""The typical mix (speed benchmark) and the atlas-style case (memory benchmark): real anatomy, real nuclei."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from casefiles import discover_cases
from common.label_boxes import label_boxes
from demo.typical_cases import atlas_case, write_typical
from demo.wheels import WheelDownloadError
from inference.cases import load_case
from inference.segment3d import sweep_slices


@pytest.fixture(scope="module")
def typical(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("typical")
    try:
        return folder, write_typical(folder)
    except WheelDownloadError as err:
        pytest.skip(f"demo data unavailable: {err}")


def test_typical_mix_is_mostly_one_object_cases_in_2d_and_3d(typical: tuple[Path, dict[str, str]]) -> None:
    folder, classes = typical
    cases = [load_case(path) for path in discover_cases(folder / "inputs")]
    assert sorted(case.name for case in cases) == sorted(classes)
    objects = {case.name: len(case.boxes) for case in cases}
    for name, kind in classes.items():
        assert (objects[name] == 1) == (kind == "one"), name
    assert 2 <= max(objects.values()) <= 5
    one_object = [name for name, kind in classes.items() if kind == "one"]
    assert len(one_object) > len(classes) / 2
    assert {name[:2] for name in one_object} == {"2D", "3D"}


def test_typical_boxes_are_tight_around_their_ground_truth(typical: tuple[Path, dict[str, str]]) -> None:
    folder, _ = typical
    for path in discover_cases(folder / "inputs"):
        case = load_case(path)
        with np.load(folder / "gts" / path.name) as truth:
            gts = truth["gts"]
        assert gts.shape == case.image.shape[: gts.ndim]
        np.testing.assert_array_equal(case.boxes, label_boxes(gts))
        # Real images: a spread of intensities inside every object, not a flat shape.
        for label in range(1, int(gts.max()) + 1):
            inside = case.image[gts == label]
            assert inside.std() > 5, (path.name, label)


def test_typical_3d_cases_say_their_slice_spacing_in_array_order(typical: tuple[Path, dict[str, str]]) -> None:
    folder, _ = typical
    for path in discover_cases(folder / "inputs"):
        if path.name.startswith("3D"):
            case = load_case(path)
            # 2 mm between the axial slices (the first axis), 1 mm within them.
            assert case.spacing is not None and tuple(case.spacing) == (2.0, 1.0, 1.0)


def test_atlas_case_is_the_standard_brain_grid_with_twelve_overlapping_structures() -> None:
    try:
        case = atlas_case()
    except WheelDownloadError as err:
        pytest.skip(f"demo data unavailable: {err}")
    assert case.image.shape == (181, 217, 181) and case.image.dtype == np.uint8
    assert case.boxes.shape == (12, 6)
    low, high = case.boxes[:, :3], case.boxes[:, 3:]
    assert (low >= 0).all() and (low <= high).all() and (high < np.array(case.image.shape[::-1])).all()
    # Left and right structures come in pairs that meet at the midline, not copies of each other.
    left, right = case.boxes[0::2], case.boxes[1::2]
    assert (left[:, 3] <= right[:, 0] + 2).all()
    # Many slices are needed by both sweeps: more than the slice cache keeps.
    upward, downward = sweep_slices(case.boxes, case.image.shape[0])
    assert (upward & downward).sum() > 32
