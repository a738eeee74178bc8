"""3D propagation: slice coverage, prompt boxes per mode, the two schedules, embedding reuse, release and budget."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from inference.cases import load_case
from inference.labelmap import paint, paint_over_earlier
from inference.predictor import BoxPredictor, ImageEmbedding
from inference.propagation import Propagation
from inference.registry import create_backend
from inference.segment3d import VolumeSegmenter, sweep_slices
from inference.slice_cache import CACHE_BYTES, Embeddings, SliceEmbeddings
from inference.threads import available_cpus
from reference.baseline import propagation_order, segment_volume_by_box
from tests.helpers import BoxEchoBackend


class KeepAll:
    """Slice embeddings encoded once and never dropped, to share between two runs."""

    def __init__(self, predictor: BoxPredictor, volume: np.ndarray) -> None:
        self.predictor, self.volume = predictor, volume
        self.embedded: dict[int, ImageEmbedding] = {}

    def get(self, z: int) -> ImageEmbedding:
        if z not in self.embedded:
            self.embedded[z] = self.predictor.embed(self.volume[z])
        return self.embedded[z]

    def release(self, slices) -> None:
        pass


def segment_volume(
    predictor: BoxPredictor, volume: np.ndarray, boxes: np.ndarray, propagation: Propagation = Propagation.CLIPPED,
    embeddings: Embeddings | None = None, cache_bytes: int | None = CACHE_BYTES,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """(box index, slice, mask) of the two-sweep schedule, as it goes."""
    return VolumeSegmenter(predictor, propagation, cache_bytes).segment(volume, boxes, embeddings)


def painted(results, shape, paint_function) -> np.ndarray:
    labels = np.zeros(shape, dtype=np.uint16)
    for index, z, mask in results:
        paint_function(labels[z], mask, index + 1)
    return labels


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


BOXES = np.array([[10, 10, 0, 60, 60, 9], [40, 40, 5, 90, 90, 14], [5, 5, 12, 30, 30, 12]])


def test_each_slice_is_encoded_once_and_kept_only_for_the_downward_sweep() -> None:
    backend = BoxEchoBackend()
    predictor = BoxPredictor(backend)
    # Box 0 (slices 0..9, middle 4) goes up 4..9 and down 3..0; box 1 (5..14, middle 9)
    # up 9..14 and down 8..5; box 2 is slice 12 alone.
    upward, downward = sweep_slices(BOXES, 20)
    assert np.flatnonzero(upward).tolist() == list(range(4, 15))
    assert np.flatnonzero(downward).tolist() == [0, 1, 2, 3, 5, 6, 7, 8]
    cache = SliceEmbeddings(predictor, volume(depth=20), upward.astype(int) + downward)
    held: dict[int, list[int]] = {}
    order = []
    for index, z, _ in segment_volume(predictor, volume(depth=20), BOXES, embeddings=cache):
        held.setdefault(z, cache.cached_slices())
        order.append((z, index))
    assert backend.encodes == cache.encoded == 15  # slices 0..14, each once
    assert order[:7] == [(4, 0), (5, 0), (6, 0), (7, 0), (8, 0), (9, 0), (9, 1)]
    assert order.index((12, 2)) == order.index((12, 1)) + 1  # same slice, box order
    assert order[-8:] == [(8, 1), (7, 1), (6, 1), (5, 1), (3, 0), (2, 0), (1, 0), (0, 0)]
    # One decoder call per slice visit (all boxes of a slice in one batch here).
    assert backend.decode_calls == 11 + 8
    # The upward sweep keeps 5..8 for the downward one, and nothing else.
    assert held[9] == [5, 6, 7, 8, 9]
    assert held[14] == [5, 6, 7, 8, 14]
    assert cache.peak_cached == 5  # box by box: 10
    assert cache.cached_slices() == []


@pytest.mark.parametrize("mode", list(Propagation))
def test_slice_by_slice_gives_the_masks_and_labels_of_box_by_box(mode: Propagation) -> None:
    """Boxes that share slices, drift (grown prompts) and overlap: same masks, same painted labels."""
    boxes = np.array([[20, 20, 2, 120, 120, 17], [60, 60, 0, 200, 200, 9], [30, 30, 8, 90, 90, 19], [70, 70, 9, 80, 80, 9]])
    vol = volume(depth=20)
    swept = list(segment_volume(BoxPredictor(BoxEchoBackend(grow=2)), vol, boxes, mode))
    predictor = BoxPredictor(BoxEchoBackend(grow=2))
    by_box = list(segment_volume_by_box(predictor, vol, boxes, mode, KeepAll(predictor, vol)))
    assert sorted((i, z) for i, z, _ in swept) == sorted((i, z) for i, z, _ in by_box)
    masks = {(i, z): m for i, z, m in by_box}
    assert all(np.array_equal(m, masks[i, z]) for i, z, m in swept)
    assert np.array_equal(painted(swept, vol.shape, paint_over_earlier), painted(by_box, vol.shape, paint))


def test_slice_by_slice_equals_box_by_box_on_real_nuclei(demo_data: Path, exported_litemedsam: list) -> None:
    """The OpenVINO model on the 3D nuclei demo volume: the two schedules paint the same labels."""
    case = load_case(demo_data / "inputs" / "3DBox_Microscope_0002.npz")
    boxes = case.boxes[:12]
    predictor = BoxPredictor(create_backend("litemedsam", "openvino", available_cpus()))
    shared = KeepAll(predictor, case.image)
    swept = list(segment_volume(predictor, case.image, boxes, Propagation.CLIPPED, embeddings=shared))
    by_box = list(segment_volume_by_box(predictor, case.image, boxes, Propagation.CLIPPED, shared))
    labels = painted(swept, case.image.shape, paint_over_earlier)
    assert len(np.unique(labels)) == len(boxes) + 1
    assert np.array_equal(labels, painted(by_box, case.image.shape, paint))
    # A slice encoded again gives the same embedding, so a cache that evicts cannot move masks.
    z = int(np.argmax(case.image.reshape(len(case.image), -1).std(axis=1)))
    assert np.array_equal(predictor.embed(case.image[z]).embedding, shared.get(z).embedding)


# BoxEchoBackend's embeddings are one float32.
ECHO_EMBEDDING_BYTES = 4


def belady_encodes(requests: list[int], slots: int) -> int:
    """Fewest encodes of a cache of `slots` embeddings: Belady's rule, which may also leave the new one out."""
    cached: set[int] = set()
    encodes = 0
    for now, z in enumerate(requests):
        if z in cached:
            continue
        encodes += 1
        cached.add(z)
        if len(cached) > slots:
            later = requests[now + 1 :]
            cached.remove(max(cached, key=lambda s: later.index(s) if s in later else math.inf))
    return encodes


def random_boxes(rng: np.random.Generator, count: int, depth: int) -> np.ndarray:
    z = np.sort(rng.integers(0, depth, (count, 2)), axis=1)
    xy = rng.integers(0, 200, (count, 2))
    return np.column_stack([xy, z[:, 0], xy + rng.integers(10, 50, (count, 2)), z[:, 1]])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("slots", [0, 1, 3, 8, None])
def test_a_budget_keeps_masks_and_encodes_no_more_than_the_best_cache_of_its_size(seed: int, slots: int | None) -> None:
    """Evicting the lowest slice is Belady-optimal for the two sweeps; no limit encodes each slice once."""
    depth = 30
    vol = volume(depth=depth)
    boxes = random_boxes(np.random.default_rng(seed), 6, depth)
    budget = None if slots is None else slots * ECHO_EMBEDDING_BYTES
    predictor = BoxPredictor(BoxEchoBackend(grow=2))
    upward, downward = sweep_slices(boxes, depth)
    cache = SliceEmbeddings(predictor, vol, upward.astype(int) + downward, budget)
    swept, at_turn = [], None
    for result in segment_volume(predictor, vol, boxes, embeddings=cache):
        if at_turn is None and swept and result[1] < swept[-1][1]:
            at_turn = cache.cached_slices()
        swept.append(result)
        assert slots is None or len(cache.cached_slices()) <= slots
    reference = BoxPredictor(BoxEchoBackend(grow=2))
    by_box = {(i, z): m for i, z, m in segment_volume_by_box(reference, vol, boxes, Propagation.CLIPPED,
                                                               KeepAll(reference, vol))}
    assert len(swept) == len(by_box) and all(np.array_equal(m, by_box[i, z]) for i, z, m in swept)

    visited, kept = int((upward | downward).sum()), int((upward & downward).sum())
    # The downward sweep starts with the highest of the slices it shares with the upward one held.
    held = kept if slots is None else min(slots, kept)
    assert at_turn == np.flatnonzero(upward & downward)[kept - held :].tolist()
    requests = np.flatnonzero(upward).tolist() + np.flatnonzero(downward)[::-1].tolist()
    assert cache.encoded == belady_encodes(requests, len(requests) if slots is None else slots)
    # Only the slices kept across the turn of the sweeps that do not fit are encoded again.
    assert cache.encoded - visited == cache.reencoded == max(0, kept - (kept if slots is None else slots))
    assert cache.peak_bytes <= (math.inf if budget is None else budget)
    assert cache.cached_slices() == [] and cache.cached_bytes == 0


def test_segment_volume_passes_its_budget_to_the_cache() -> None:
    """Slices 5..8 wait for the downward sweep; a budget of two embeddings encodes two of them again."""
    encodes = {}
    for budget in (None, 2 * ECHO_EMBEDDING_BYTES):
        backend = BoxEchoBackend()
        list(segment_volume(BoxPredictor(backend), volume(depth=20), BOXES, cache_bytes=budget))
        encodes[budget] = backend.encodes
    assert encodes == {None: 15, 2 * ECHO_EMBEDDING_BYTES: 17}


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
