"""3D propagation: slice coverage, prompt boxes per mode, embedding reuse and release."""

from __future__ import annotations

import numpy as np
import pytest

from inference.predictor import BoxPredictor
from inference.propagation import Propagation
from inference.volume import SliceEmbeddings, propagation_order, segment_volume
from tests.helpers import BoxEchoBackend


def volume(depth: int = 12, size: int = 256) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (depth, size, size), dtype=np.uint8)


@pytest.mark.parametrize(
    ("z_min", "z_max", "expected"),
    [
        (0, 11, [5, 6, 7, 8, 9, 10, 11, 4, 3, 2, 1, 0]),  # both volume ends
        (2, 5, [3, 4, 5, 2]),
        (3, 4, [3, 4]),
        (7, 7, [7]),  # single-slice box (the baseline asserted z_min < z_max)
    ],
)
def test_order_covers_z_min_to_z_max_from_the_middle(z_min: int, z_max: int, expected: list[int]) -> None:
    box = np.array([10, 10, z_min, 50, 50, z_max])
    order = list(propagation_order(box))
    assert [z for z, _ in order] == expected
    assert order[0][1] is None
    # Every other slice follows its neighbour towards the middle.
    assert all(prev in (z - 1, z + 1) for z, prev in order[1:])


def test_segment_volume_paints_every_slice_of_the_box_including_the_ends() -> None:
    backend = BoxEchoBackend()
    boxes = np.array([[20, 30, 0, 100, 120, 11]])
    results = list(segment_volume(BoxPredictor(backend), volume(), boxes))
    assert sorted(z for _, z, _ in results) == list(range(12))
    for _, _, mask in results:
        rows, cols = np.nonzero(mask)
        assert (cols.min(), rows.min(), cols.max(), rows.max()) == (20, 30, 100, 120)


def test_each_slice_is_encoded_once_and_released_after_its_last_box() -> None:
    backend = BoxEchoBackend()
    predictor = BoxPredictor(backend)
    vol = volume(depth=20)
    boxes = np.array([[10, 10, 0, 60, 60, 9], [40, 40, 5, 90, 90, 14], [5, 5, 12, 30, 30, 12]])
    cache = SliceEmbeddings(predictor, vol, boxes)
    held_at_first_slice: dict[int, list[int]] = {}
    results = []
    for index, z, mask in segment_volume(predictor, vol, boxes, embeddings=cache):
        held_at_first_slice.setdefault(index, cache.cached_slices())
        results.append((index, z, mask))
    assert backend.encodes == cache.encoded == 15  # slices 0..14, each once
    assert len(results) == 10 + 10 + 1
    # Box 1 starts on its middle slice 9 with only the slices it shares with box 0:
    # 0..4 (box 0 alone) are gone. Box 2 finds slice 12 kept for it, and only that.
    assert held_at_first_slice == {0: [4], 1: [5, 6, 7, 8, 9], 2: [12]}
    # The most held at once: box 0's 5..9 with box 1's own 10..14.
    assert cache.peak_cached == 10
    assert cache.cached_slices() == []  # everything released at the end


def test_clipped_prompts_stay_inside_the_object_box_while_baseline_drifts() -> None:
    boxes = np.array([[60, 60, 0, 120, 120, 11]])
    clipped, baseline = BoxEchoBackend(grow=6), BoxEchoBackend(grow=6)
    list(segment_volume(BoxPredictor(clipped), volume(), boxes, Propagation.CLIPPED))
    list(segment_volume(BoxPredictor(baseline), volume(), boxes, Propagation.BASELINE))
    object_box = [60, 60, 120, 120]
    for _, (x0, y0, x1, y1) in clipped.prompts:
        assert x0 >= 60 and y0 >= 60 and x1 <= 120 and y1 <= 120
    assert clipped.prompts[1][1] == object_box  # grown mask box clipped back to the object box
    widths = [box[2] - box[0] for _, box in baseline.prompts]
    assert max(widths) > 120  # each slice grows by the mask overshoot plus 3 px


def test_empty_previous_mask_falls_back_to_the_object_box() -> None:
    backend = BoxEchoBackend(empty=True)
    boxes = np.array([[60, 60, 2, 120, 120, 8]])
    for mode in Propagation:
        backend.prompts.clear()
        list(segment_volume(BoxPredictor(backend), volume(), boxes, mode))
        assert [box for _, box in backend.prompts] == [[60, 60, 120, 120]] * 7


def test_prompt_follows_previous_mask_box_grown_by_three() -> None:
    backend = BoxEchoBackend()
    boxes = np.array([[60, 60, 0, 120, 120, 2]])
    list(segment_volume(BoxPredictor(backend), volume(), boxes, Propagation.BASELINE))
    # Middle slice: the object box; next slices: its mask's box grown by 3 px.
    assert [box for _, box in backend.prompts] == [[60, 60, 120, 120], [57, 57, 123, 123], [57, 57, 123, 123]]


def test_prompt_boxes_scale_to_model_space_for_non_square_slices() -> None:
    backend = BoxEchoBackend()
    vol = np.random.default_rng(1).integers(0, 255, (3, 100, 512), dtype=np.uint8)
    boxes = np.array([[101, 21, 0, 399, 79, 2]])
    results = list(segment_volume(BoxPredictor(backend), vol, boxes, Propagation.CLIPPED))
    assert backend.prompts[0][1] == [50, 10, 199, 39]  # x * 0.5 truncated
    assert all(mask.shape == (100, 512) for _, _, mask in results)
