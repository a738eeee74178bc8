"""`--slice-step`: which slices the model decodes, the masks interpolated between them, and a real case end to end."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from evaluation.metrics.folder import evaluate_folder
from inference.__main__ import main as inference_main
from inference.interpolation import interpolate_masks, signed_distance
from inference.predictor import BoxPredictor
from inference.profiling import read_profile
from inference.propagation import Propagation
from inference.segment3d import VolumeSegmenter, decoded_slices, sweep_slices
from tests.helpers import BoxEchoBackend


def disc(centre: tuple[float, float], radius: float, shape: tuple[int, int] = (96, 96)) -> np.ndarray:
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


@pytest.mark.parametrize(
    ("z_min", "z_max", "step", "expected"),
    [
        (0, 10, 1, list(range(11))),
        (0, 10, 3, [0, 2, 5, 8, 10]),  # middle 5, then 5 +- 3, then both ends
        (3, 9, 2, [3, 4, 6, 8, 9]),
        (4, 5, 4, [4, 5]),
        (7, 7, 3, [7]),
    ],
)
def test_decoded_slices_are_the_middle_every_nth_outwards_and_both_ends(
    z_min: int, z_max: int, step: int, expected: list[int]
) -> None:
    assert decoded_slices(np.array([0, 0, z_min, 9, 9, z_max]), step).tolist() == expected


def test_a_slice_step_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="slice step"):
        decoded_slices(np.array([0, 0, 0, 9, 9, 9]), 0)
    with pytest.raises(ValueError, match="slice step"):
        VolumeSegmenter(BoxPredictor(BoxEchoBackend()), slice_step=0)


def test_signed_distance_is_positive_inside_and_negative_outside() -> None:
    mask = disc((48, 48), 10)
    distance = signed_distance(mask)
    assert (distance[mask] >= 1).all() and (distance[~mask] <= -1).all()
    assert distance[48, 48] == pytest.approx(10, abs=0.1)  # the nearest outside pixel is about a radius away
    assert (signed_distance(np.zeros((4, 5), bool)) < 0).all() and (signed_distance(np.ones((4, 5), bool)) > 0).all()


def test_interpolated_masks_move_and_grow_from_one_shape_to_the_other() -> None:
    lower, upper = disc((30, 30), 8), disc((60, 50), 16)
    between = interpolate_masks(lower, upper, 4)
    assert len(between) == 3
    areas = [int(mask.sum()) for mask in [lower, *between, upper]]
    assert areas == sorted(areas)  # grows steadily
    middle = np.argwhere(between[1]).mean(axis=0)
    assert middle == pytest.approx([45, 40], abs=1.5)  # half way between the centres
    assert interpolate_masks(lower, upper, 1) == []


def test_an_empty_end_hands_each_slice_the_nearer_mask() -> None:
    mask, empty = disc((40, 40), 12), np.zeros((96, 96), bool)
    between = interpolate_masks(mask, empty, 5)
    assert [m.any() for m in between] == [True, True, False, False]
    assert all(np.array_equal(m, mask) for m in between[:2])


def test_a_step_decodes_only_its_slices_and_fills_every_other_slice_once() -> None:
    backend = BoxEchoBackend()
    boxes = np.array([[20, 30, 0, 100, 120, 11], [40, 40, 3, 60, 60, 6]])
    upward, downward = sweep_slices(boxes, 12, step=3)
    # Box 0: middle 5, decoded 5, 8, 11 up and 2, 0 down; box 1: middle 4, decoded 4, 6 up and 3 down.
    assert np.flatnonzero(upward).tolist() == [4, 5, 6, 8, 11]
    assert np.flatnonzero(downward).tolist() == [0, 2, 3]
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 255, (12, 256, 256), dtype=np.uint8)
    results = list(VolumeSegmenter(BoxPredictor(backend), slice_step=3).segment(volume, boxes))
    assert backend.encodes == 8
    assert sorted((i, z) for i, z, _ in results) == [(0, z) for z in range(12)] + [(1, z) for z in range(3, 7)]
    # The echo model's mask is its prompt box, so every slice of a box, decoded or interpolated, is that box.
    for index, _, mask in results:
        rows, cols = np.nonzero(mask)
        x0, y0, _, x1, y1, _ = boxes[index]
        assert (cols.min(), rows.min(), cols.max(), rows.max()) == (x0, y0, x1, y1)


def test_each_decoded_slice_is_prompted_from_the_box_s_decoded_slice_before_it() -> None:
    """The echo model grows each prompt by 2 model pixels, so the prompt shows which mask it came from."""
    backend = BoxEchoBackend(grow=2)
    box = np.array([[64, 64, 0, 128, 128, 8]])
    volume = np.zeros((9, 256, 256), dtype=np.uint8)
    list(VolumeSegmenter(BoxPredictor(backend), Propagation.BASELINE, slice_step=4).segment(volume, box))
    # Decoded slices 4 (middle), 8 up; 0 down: the box, then the middle's mask (grown by 2) grown by 3.
    widths = [prompt[2] - prompt[0] for _, prompt in backend.prompts]
    assert widths == [64, 64 + 2 * 2 + 2 * 3, 64 + 2 * 2 + 2 * 3]


def test_step_three_on_a_real_mr_case_encodes_fewer_slices_and_keeps_dsc(
    demo_data: Path, exported_litemedsam: list, tmp_path: Path
) -> None:
    """The demo's two-object brain MR, default model: every third slice against every slice."""
    inputs, gts = tmp_path / "inputs", tmp_path / "gts"
    for folder in (inputs, gts):
        folder.mkdir()
        shutil.copy(demo_data / folder.name / "3DBox_MR_0003.npz", folder)
    dsc, encodes = {}, {}
    for step in (1, 3):
        out, profile = tmp_path / f"step{step}", tmp_path / f"step{step}.json"
        assert inference_main(["-i", str(inputs), "-o", str(out), "--threads", "1", "--no-progress",
                               "--slice-step", str(step), "--profile", str(profile)]) == 0
        [score] = evaluate_folder(gts, out)
        dsc[step] = score.dsc
        [record] = read_profile(profile).cases
        encodes[step] = record.calls.encoder.calls
    assert encodes[1] == 32 and encodes[3] <= 12
    assert dsc[3] >= dsc[1] - 0.01

