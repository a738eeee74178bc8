"""The real-size cases (memory benchmark): real images at the sizes asked for, boxes inside them around real structures."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from common.label_boxes import label_boxes
from demo.large_cases import NUCLEI_BOXES, NUCLEI_SCALE, VOLUME_SHAPE, brain_volume_case, nuclei_case, scale_boxes
from demo.sources import nuclei_2d
from demo.wheels import NILEARN, STARDIST, WheelDownloadError, default_cache_dir, fetch_wheel
from inference.segment3d import sweep_slices

DEPTH = 40


def wheel(which) -> Path:
    try:
        return fetch_wheel(which, default_cache_dir())
    except WheelDownloadError as err:
        pytest.skip(f"demo data unavailable: {err}")


def assert_boxes_inside(boxes: np.ndarray, shape: tuple[int, ...]) -> None:
    """Inclusive x-first boxes with min <= max inside an array of `shape` (array order)."""
    k = len(shape)
    assert boxes.dtype.kind == "i" and boxes.shape[1] == 2 * k
    assert (boxes[:, :k] >= 0).all() and (boxes[:, :k] <= boxes[:, k:]).all()
    assert (boxes[:, k:] < np.array(shape[::-1])).all()


def test_volume_case_is_the_brain_at_ct_size_with_six_anatomical_boxes() -> None:
    case = brain_volume_case(wheel(NILEARN), DEPTH)
    assert case.name.startswith("3DBox_")
    assert case.image.shape == (DEPTH, *VOLUME_SHAPE[1:]) and case.image.dtype == np.uint8
    assert case.boxes.shape == (6, 6)
    assert_boxes_inside(case.boxes, case.image.shape)
    brain, left, right, _, fossa, vertex = case.boxes
    # The brain box spans most slices; the hemispheres meet at the midline.
    assert brain[5] - brain[2] + 1 >= 0.9 * DEPTH
    assert left[3] < right[0] + 3 and left[0] == brain[0] and right[3] == brain[3]
    # The posterior fossa lies below the vertex region and behind the brain's middle.
    assert fossa[5] < vertex[2] and fossa[1] > (brain[1] + brain[4]) / 2
    # Their middle slices are far apart: the downward sweep waits for many slices.
    upward, downward = sweep_slices(case.boxes, DEPTH)
    assert (upward & downward).sum() >= DEPTH / 4
    # A skull-stripped MR: a margin of background 0 around the brain, real tissue contrast inside.
    x0, y0, z0, x1, y1, z1 = brain
    inside = case.image[z0 : z1 + 1, y0 : y1 + 1, x0 : x1 + 1]
    for border in (np.s_[:, :10], np.s_[:, -10:], np.s_[:, :, :10], np.s_[:, :, -10:]):
        assert case.image[border].max() == 0
    assert (inside > 0).mean() > 0.4 and len(np.unique(inside)) > 200


def test_scaled_boxes_cover_the_scaled_pixels() -> None:
    boxes = np.array([[1, 2, 3, 4], [0, 0, 9, 9]])
    assert scale_boxes(boxes, (2.0, 2.0), (0, 0), (20, 20)).tolist() == [[2, 4, 7, 9], [0, 0, 19, 19]]
    assert scale_boxes(boxes, (0.5, 1.0), (5, 0), (10, 10)).tolist() == [[1, 6, 3, 7], [0, 5, 9, 9]]


def test_nuclei_case_is_the_real_image_tiled_and_scaled_with_its_nuclei_boxes() -> None:
    stardist = wheel(STARDIST)
    case = nuclei_case(stardist)
    demo = nuclei_2d(stardist, "2DBox_Microscope_0001.npz")
    assert case.name.startswith("2DBox_")
    height, width = demo.gts.shape
    assert case.image.shape == (2 * NUCLEI_SCALE * height, 2 * NUCLEI_SCALE * width, 3)
    assert case.image.dtype == np.uint8
    assert case.boxes.shape == (NUCLEI_BOXES, 4) and len(np.unique(case.boxes, axis=0)) == NUCLEI_BOXES
    assert_boxes_inside(case.boxes, case.image.shape[:2])
    # Inside its edges, each tile is the demo's real nuclei image scaled up.
    scaled = cv2.resize(demo.image, None, fx=NUCLEI_SCALE, fy=NUCLEI_SCALE, interpolation=cv2.INTER_LINEAR)
    tile = case.image[height * NUCLEI_SCALE :, width * NUCLEI_SCALE :]
    assert np.array_equal(tile[2:-2, 2:-2], scaled[2:-2, 2:-2])
    # Every box is a real nucleus box, scaled and moved to its tile.
    nuclei = {tuple(b) for b in label_boxes(demo.gts)}
    in_tile = case.boxes // NUCLEI_SCALE % [width, height, width, height]
    assert all(tuple(b) in nuclei for b in in_tile)
