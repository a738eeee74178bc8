"""Label images to objects (label values or connected instances, dust dropped) and objects to boxes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from common.label_boxes import label_boxes
from convert.boxes import MODEL_SIZE, jitter_boxes, read_box_file
from convert.errors import ConvertError
from convert.objects import ObjectMode, find_objects, integer_labels
from tests.convert_data import LEFT_LABEL, RIGHT_LABEL, mni_volume, nuclei_2d, nuclei_3d_mask


def components(mask: np.ndarray, min_size: int) -> list[np.ndarray]:
    """Connected components (full connectivity) of a mask at least min_size large, by scipy: an independent count."""
    numbered, count = ndimage.label(mask, structure=np.ones((3,) * mask.ndim))
    return [numbered == k for k in range(1, count + 1) if (numbered == k).sum() >= min_size]


def test_label_values_become_objects_in_increasing_order() -> None:
    labels = sitk.GetArrayFromImage(mni_volume().labels)
    found = find_objects(integer_labels(labels), ObjectMode.LABELS)
    assert found.source_labels == (LEFT_LABEL, RIGHT_LABEL)
    assert np.array_equal(found.gts == 1, labels == LEFT_LABEL) and np.array_equal(found.gts == 2, labels == RIGHT_LABEL)
    assert found.voxels == ((labels == LEFT_LABEL).sum(), (labels == RIGHT_LABEL).sum())
    assert found.gts.dtype == np.uint16


@pytest.mark.parametrize("mask", [nuclei_3d_mask, lambda: nuclei_2d()[1]], ids=["3d", "2d"])
def test_instances_are_the_connected_components_of_real_nuclei(mask: Callable[[], np.ndarray]) -> None:
    semantic = (mask() > 0).astype(np.uint8)
    min_size = 100 if semantic.ndim == 3 else 10
    found = find_objects(semantic, ObjectMode.INSTANCES)
    expected = components(semantic, min_size)
    assert len(expected) > 5 and int(found.gts.max()) == len(expected)
    first_voxels = [int(np.flatnonzero(found.gts == k)[0]) for k in range(1, len(expected) + 1)]
    assert first_voxels == sorted(first_voxels)  # ordered by where each first appears
    for k, component in enumerate(sorted(expected, key=lambda c: int(np.flatnonzero(c)[0])), 1):
        assert np.array_equal(found.gts == k, component)
    assert set(found.source_labels) == {1}
    assert found.voxels == tuple(int(c.sum()) for c in sorted(expected, key=lambda c: int(np.flatnonzero(c)[0])))


def test_dust_under_the_minimum_is_dropped() -> None:
    volume = np.zeros((10, 20, 20), dtype=np.uint8)
    volume[0:3, 0:3, 0:11] = 1  # 99 voxels
    volume[5:9, 5:10, 5:10] = 1  # 100 voxels
    found = find_objects(volume, ObjectMode.INSTANCES)
    assert found.voxels == (100,) and (found.gts == 1).sum() == 100 and found.gts[0].max() == 0
    assert find_objects(volume, ObjectMode.INSTANCES, min_size=99).voxels == (99, 100)
    picture = np.zeros((10, 10), dtype=np.uint8)
    picture[0, 0:9] = 1  # 9 pixels
    picture[5:7, 0:5] = 1  # 10 pixels
    assert find_objects(picture, ObjectMode.INSTANCES).voxels == (10,)


def test_diagonal_neighbours_are_one_instance() -> None:
    picture = np.zeros((8, 8), dtype=np.uint8)
    picture[np.arange(6), np.arange(6)] = 1  # touching at corners only
    assert find_objects(picture, ObjectMode.INSTANCES, min_size=1).voxels == (6,)
    volume = np.zeros((6, 6, 6), dtype=np.uint8)
    volume[np.arange(6), np.arange(6), np.arange(6)] = 1
    assert find_objects(volume, ObjectMode.INSTANCES, min_size=1).voxels == (6,)


def test_instances_are_ordered_by_label_value_then_position() -> None:
    picture = np.zeros((20, 20), dtype=np.uint8)
    picture[0:4, 0:4] = 7
    picture[10:14, 10:14] = 2
    picture[15:19, 0:4] = 7
    picture[0:4, 15:19] = 2
    found = find_objects(picture, ObjectMode.INSTANCES)
    assert found.source_labels == (2, 2, 7, 7)
    assert [tuple(np.argwhere(found.gts == k)[0]) for k in range(1, 5)] == [(0, 15), (10, 10), (0, 0), (15, 0)]


def test_label_images_must_hold_non_negative_whole_values() -> None:
    assert integer_labels(np.array([0.0, 2.0, 5.0], dtype=np.float32)).tolist() == [0, 2, 5]
    with pytest.raises(ValueError, match="non-integer"):
        integer_labels(np.array([0.0, 0.5]))
    with pytest.raises(ValueError, match="negative"):
        integer_labels(np.array([0, -1]))
    with pytest.raises(ValueError, match="empty"):
        find_objects(np.zeros((4, 4), dtype=np.int64), ObjectMode.LABELS)
    with pytest.raises(ValueError, match="no object left"):
        find_objects(np.eye(4, dtype=np.int64), ObjectMode.INSTANCES)


def test_jittered_boxes_widen_x_and_y_by_up_to_five_model_pixels_and_repeat_with_the_seed() -> None:
    gts = find_objects(sitk.GetArrayFromImage(mni_volume().labels), ObjectMode.LABELS).gts
    tight = label_boxes(gts, 2)
    shape = gts.shape
    scale = max(shape[1:]) / MODEL_SIZE
    draws = [jitter_boxes(tight, shape, 5, np.random.default_rng(seed)) for seed in (0, 0, 1)]
    assert np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[0], draws[2])
    for jittered in draws:
        grown = np.concatenate([tight[:, :3] - jittered[:, :3], jittered[:, 3:] - tight[:, 3:]], axis=1)
        assert (grown >= 0).all() and (grown <= round(5 * scale)).all()
        assert np.array_equal(jittered[:, [2, 5]], tight[:, [2, 5]])  # z stays tight
    edge = np.array([[0, 0, 0, shape[2] - 1, shape[1] - 1, 3]])
    assert np.array_equal(jitter_boxes(edge, shape, 5, np.random.default_rng(0)), edge)


def box_file(tmp_path: Path, coordinates: str, boxes: list[list[float]]) -> Path:
    path = tmp_path / f"boxes_{coordinates}.json"
    path.write_text(json.dumps({"coordinates": coordinates, "boxes": boxes}))
    return path


def test_box_files_in_voxels_and_in_millimetres_give_the_label_boxes(tmp_path: Path) -> None:
    volume = mni_volume()
    tight = label_boxes(find_objects(sitk.GetArrayFromImage(volume.labels), ObjectMode.LABELS).gts, 2)
    voxel = read_box_file(box_file(tmp_path, "voxel", tight.tolist()), volume.image)
    assert np.array_equal(voxel, tight)
    # The same boxes as ITK-SNAP would report their corners in LPS millimetres: x is flipped, so the
    # corner with the lowest index is the one with the highest x.
    corners = [[*volume.image.TransformIndexToPhysicalPoint(box[:3].tolist()),
                *volume.image.TransformIndexToPhysicalPoint(box[3:].tolist())] for box in tight]
    assert corners[0][0] > corners[0][3]
    assert np.array_equal(read_box_file(box_file(tmp_path, "mm", corners), volume.image), tight)


@pytest.mark.parametrize(("boxes", "problem"), [
    ([[0, 0, 0, 197, 10, 10]], "box 1 .* lies outside the image"),
    ([[-1, 0, 0, 5, 5, 5]], "outside the image"),
    ([[0, 0, 5, 5]], "must be 6 numbers"),
    ([], "no boxes"),
])
def test_bad_box_files_name_the_file_and_the_box(tmp_path: Path, boxes: list, problem: str) -> None:
    path = box_file(tmp_path, "voxel", boxes)
    with pytest.raises(ConvertError, match=problem) as caught:
        read_box_file(path, mni_volume().image)
    assert caught.value.path == str(path)
