"""3D cases: segment each box from its middle slice outwards, one slice at a time.

Each slice is prompted with the box of the previous slice's mask (grown by 3
pixels), or the object's own box where that mask is empty. The volume is swept
twice, upwards from the boxes' middle slices and then downwards, decoding on each
slice every box that needs it while its embedding is at hand: each slice is encoded
once, the decoder's image half runs once per slice and visit, and an embedding is
kept between the sweeps only when the downward sweep will need it again, within the
slice cache's byte budget (slices past it are encoded again). The masks are those
of finishing one box before the next, the baseline's order (`reference.baseline`).

With a slice step N > 1 (`--slice-step`) each box is decoded only on its middle
slice, every Nth slice from there outwards and its two end slices, each prompted
from the mask of the box's slice decoded before it; the slices between take masks
interpolated from the two around them (`inference.interpolation`). A one-object
case then encodes about 1/N of its slices.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from inference.interpolation import interpolate_masks
from inference.predictor import BoxPredictor
from inference.propagation import Propagation, pixel_extent, prompt_box
from inference.slice_cache import CACHE_BYTES, Embeddings, SliceEmbeddings


def slice_range(box: np.ndarray) -> tuple[int, int, int]:
    """(z_min, z_mid, z_max) of an (x0, y0, z0, x1, y1, z1) box; both ends are segmented."""
    z_min, z_max = int(box[2]), int(box[5])
    return z_min, int((z_max - z_min) / 2 + z_min), z_max


def decoded_slices(box: np.ndarray, step: int = 1) -> np.ndarray:
    """Sorted slices of a box that the model decodes: every `step`th from the middle slice outwards, and both ends."""
    if step < 1:
        raise ValueError(f"the slice step is a whole number >= 1, not {step}")
    z_min, z_mid, z_max = slice_range(box)
    if step == 1:
        return np.arange(z_min, z_max + 1)
    outwards = [np.arange(z_mid, z_max + 1, step), np.arange(z_mid, z_min - 1, -step), [z_min, z_max]]
    return np.unique(np.concatenate(outwards)).astype(np.int64)


class BoxState:
    """One box's prompts: its model-space box and extent, the slices it is decoded on, and its masks so far."""

    def __init__(self, predictor: BoxPredictor, box: np.ndarray, slice_shape: tuple[int, int], step: int = 1) -> None:
        self.object_box = predictor.to_model_space(box[[0, 1, 3, 4]], slice_shape)
        self.object_extent = pixel_extent(box[[0, 1, 3, 4]], slice_shape, predictor.input_size)
        self.z_min, self.z_mid, self.z_max = slice_range(box)
        self.decoded = frozenset(decoded_slices(box, step).tolist())
        self.middle_mask: np.ndarray | None = None
        self.last_mask: np.ndarray | None = None
        self.last_slice: int | None = None  # where last_mask lies

    def masks_between(self, z: int, mask: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """(slice, mask) for the slices between the last decoded slice and z, interpolated towards `mask`."""
        if self.last_slice is None or self.last_mask is None:
            return
        gap = abs(z - self.last_slice)
        direction = 1 if z > self.last_slice else -1
        for k, between in enumerate(interpolate_masks(self.last_mask, mask, gap), 1):
            yield self.last_slice + direction * k, between


def sweep_slices(boxes: np.ndarray, depth: int, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (depth,) masks of the slices the upward and the downward sweep decode, at a slice step."""
    upward = np.zeros(depth, dtype=bool)
    downward = np.zeros(depth, dtype=bool)
    for box in boxes:
        z_mid = slice_range(box)[1]
        decoded = decoded_slices(box, step)
        upward[decoded[decoded >= z_mid]] = True
        downward[decoded[decoded < z_mid]] = True
    return upward, downward


class VolumeSegmenter:
    """3D cases on one predictor, with one propagation rule, one slice step and one slice-cache budget."""

    def __init__(
        self, predictor: BoxPredictor, propagation: Propagation = Propagation.CLIPPED,
        cache_bytes: int | None = CACHE_BYTES, slice_step: int = 1,
    ) -> None:
        """`cache_bytes`: the slice embeddings kept between the sweeps (None: no limit); `slice_step`: see above."""
        if slice_step < 1:
            raise ValueError(f"the slice step is a whole number >= 1, not {slice_step}")
        self.predictor = predictor
        self.propagation = propagation
        self.cache_bytes = cache_bytes
        self.slice_step = slice_step

    def segment(
        self, volume: np.ndarray, boxes: np.ndarray, embeddings: Embeddings | None = None
    ) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield (box index, slice, boolean (H, W) mask) for a (D, H, W) volume and (N, 6) boxes.

        Every box gets the masks that finishing one box before the next gives it
        (each box's prompts depend only on its own masks), but slice by slice: paint
        them with `paint_over_earlier` so that later boxes stay on top. Without
        `embeddings`, slice embeddings are kept within the cache budget.
        """
        states = [BoxState(self.predictor, box, volume.shape[1:], self.slice_step) for box in boxes]
        upward, downward = sweep_slices(boxes, volume.shape[0], self.slice_step)
        uses = upward.astype(np.int64) + downward
        embeddings = embeddings or SliceEmbeddings(self.predictor, volume, uses, self.cache_bytes)
        for z in np.flatnonzero(upward).tolist():
            active = [i for i, s in enumerate(states) if s.z_mid <= z and z in s.decoded]
            previous = [None if z == states[i].z_mid else states[i].last_mask for i in active]
            for index, mask in self._decode_slice(embeddings, z, states, active, previous):
                state = states[index]
                for between, interpolated in state.masks_between(z, mask):
                    yield index, between, interpolated
                state.last_mask, state.last_slice = mask, z
                if z == state.z_mid and state.z_min < state.z_mid:
                    state.middle_mask = mask
                yield index, z, mask
        for state in states:
            state.last_mask, state.last_slice = state.middle_mask, state.z_mid
        for z in np.flatnonzero(downward)[::-1].tolist():
            active = [i for i, s in enumerate(states) if z < s.z_mid and z in s.decoded]
            previous = [states[i].last_mask for i in active]
            for index, mask in self._decode_slice(embeddings, z, states, active, previous):
                state = states[index]
                for between, interpolated in state.masks_between(z, mask):
                    yield index, between, interpolated
                state.last_mask, state.last_slice = mask, z
                if z == state.z_min:
                    state.last_mask = state.middle_mask = None
                yield index, z, mask

    def _decode_slice(
        self,
        embeddings: Embeddings,
        z: int,
        states: list[BoxState],
        active: list[int],
        previous: list[np.ndarray | None],
    ) -> Iterator[tuple[int, np.ndarray]]:
        """(box index, mask) for the `active` boxes on slice z, each prompted from its `previous` mask."""
        size = self.predictor.input_size
        prompts = np.stack([
            prompt_box(mask, states[i].object_box, states[i].object_extent, i + 1, self.propagation, size)
            for i, mask in zip(active, previous)
        ])
        yield from zip(active, self.predictor.predict(embeddings.get(z), prompts))
        embeddings.release([z])
