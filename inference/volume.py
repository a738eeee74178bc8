"""3D cases: segment each box from its middle slice outwards, one slice at a time.

Each slice is prompted with the box of the previous slice's mask (grown by 3
pixels), or the object's own box where that mask is empty. Two schedules give the
same masks:

- `segment_volume` (the default) sweeps the volume twice, upwards from the boxes'
  middle slices and then downwards, decoding on each slice every box that needs
  it while its embedding is at hand: each slice is encoded once, the decoder's
  image half runs once per slice and visit, and an embedding is kept between the
  sweeps only when the downward sweep will need it again, within a byte budget
  (slices past it are encoded again);
- `segment_volume_by_box` finishes one box before starting the next (the
  challenge baseline's order; with `EncodeEveryTime` it is the baseline itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

import numpy as np

from inference.predictor import BoxPredictor, ImageEmbedding
from inference.propagation import Propagation, pixel_extent, prompt_box

# Slice embeddings `segment_volume` may keep between its sweeps. One is 256 x 64 x 64
# float32 (4 MiB), so this holds 64; slices past that are encoded again.
CACHE_BYTES = 256 * 2**20


def slice_range(box: np.ndarray) -> tuple[int, int, int]:
    """(z_min, z_mid, z_max) of an (x0, y0, z0, x1, y1, z1) box; both ends are segmented."""
    z_min, z_max = int(box[2]), int(box[5])
    return z_min, int((z_max - z_min) / 2 + z_min), z_max


def propagation_order(box: np.ndarray) -> Iterator[tuple[int, int | None]]:
    """Yield (slice, previous slice or None): middle up to z_max, then middle-1 down to z_min."""
    z_min, z_mid, z_max = slice_range(box)
    yield z_mid, None
    for z in range(z_mid + 1, z_max + 1):
        yield z, z - 1
    for z in range(z_mid - 1, z_min - 1, -1):
        yield z, z + 1


class Embeddings(Protocol):
    """Where slice embeddings come from: `get` one, `release` slices after their use."""

    def get(self, z: int) -> ImageEmbedding: ...

    def release(self, slices: Iterable[int]) -> None: ...


class SliceEmbeddings:
    """Encodes slices on demand, keeps those needed again within a byte budget, frees each after its last use.

    A slice needed again that does not fit evicts the lowest cached slices, which
    are encoded again at their next use; a slice needed only now is then not kept.
    """

    def __init__(
        self, predictor: BoxPredictor, volume: np.ndarray, uses: np.ndarray, budget_bytes: int | None = CACHE_BYTES
    ) -> None:
        """`uses[z]`: how many times slice z will be released before it can be dropped; `None` budget: no limit."""
        self._predictor = predictor
        self._volume = volume
        self._pending = np.array(uses, dtype=np.int64)
        self._budget = budget_bytes
        self._cache: dict[int, ImageEmbedding] = {}
        self._seen = np.zeros(len(self._pending), dtype=bool)
        self.cached_bytes = 0
        self.encoded = 0
        self.reencoded = 0  # encodes of slices encoded before: what the budget costs
        self.peak_cached = 0
        self.peak_bytes = 0

    def get(self, z: int) -> ImageEmbedding:
        """Embedding of slice z, encoding it if it is not cached."""
        if z in self._cache:
            return self._cache[z]
        embedded = self._predictor.embed(self._volume[z])
        self.encoded += 1
        self.reencoded += int(self._seen[z])
        self._seen[z] = True
        size = embedded.embedding.nbytes
        # Belady's choice (evict what is needed farthest ahead) under `segment_volume`:
        # while a sweep is at z, every cached slice lies below z and waits for the
        # downward sweep, which visits z before them and them from the highest down.
        # So the lowest is needed last, and z itself sooner than any of them unless
        # it is not needed again: then evicting for it would only cost an encode.
        # Every slice kept between the sweeps is held across their turn, so no cache
        # of `slots` embeddings encodes fewer than `kept - slots` slices twice; this
        # one encodes that many.
        if self._pending[z] > 1:
            self._evict_lowest_until_fits(size)
        if self._fits(size):
            self._cache[z] = embedded
            self.cached_bytes += size
            self.peak_cached = max(self.peak_cached, len(self._cache))
            self.peak_bytes = max(self.peak_bytes, self.cached_bytes)
        return embedded

    def cached_slices(self) -> list[int]:
        """The slices whose embeddings are held now, sorted."""
        return sorted(self._cache)

    def release(self, slices: Iterable[int]) -> None:
        """One use of each slice is done; drop the embeddings nothing needs any more."""
        for z in slices:
            self._pending[z] -= 1
            if self._pending[z] == 0 and z in self._cache:
                self._drop(z)

    def _fits(self, size: int) -> bool:
        return self._budget is None or self.cached_bytes + size <= self._budget

    def _evict_lowest_until_fits(self, size: int) -> None:
        while self._cache and not self._fits(size):
            self._drop(min(self._cache))

    def _drop(self, z: int) -> None:
        self.cached_bytes -= self._cache.pop(z).embedding.nbytes


class _BoxState:
    """One box's prompts: its model-space box and extent, and its masks so far."""

    def __init__(self, predictor: BoxPredictor, box: np.ndarray, slice_shape: tuple[int, int]) -> None:
        self.object_box = predictor.to_model_space(box[[0, 1, 3, 4]], slice_shape)
        self.object_extent = pixel_extent(box[[0, 1, 3, 4]], slice_shape, predictor.image_size)
        self.z_min, self.z_mid, self.z_max = slice_range(box)
        self.middle_mask: np.ndarray | None = None
        self.last_mask: np.ndarray | None = None


def sweep_slices(boxes: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (depth,) masks of the slices the upward and the downward sweep visit."""
    upward = np.zeros(depth, dtype=bool)
    downward = np.zeros(depth, dtype=bool)
    for box in boxes:
        z_min, z_mid, z_max = slice_range(box)
        upward[z_mid : z_max + 1] = True
        downward[z_min:z_mid] = True
    return upward, downward


def segment_volume(
    predictor: BoxPredictor,
    volume: np.ndarray,
    boxes: np.ndarray,
    propagation: Propagation = Propagation.CLIPPED,
    embeddings: Embeddings | None = None,
    cache_bytes: int | None = CACHE_BYTES,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (box index, slice, boolean (H, W) mask) for a (D, H, W) volume and (N, 6) boxes.

    Every box gets the masks `segment_volume_by_box` gives it (each box's prompts
    depend only on its own masks), but slice by slice: paint them with
    `paint_over_earlier` so that later boxes stay on top. Without `embeddings`, slice
    embeddings are kept within `cache_bytes` (None: no limit).
    """
    states = [_BoxState(predictor, box, volume.shape[1:]) for box in boxes]
    upward, downward = sweep_slices(boxes, volume.shape[0])
    embeddings = embeddings or SliceEmbeddings(predictor, volume, upward.astype(np.int64) + downward, cache_bytes)
    for z in np.flatnonzero(upward):
        active = [i for i, s in enumerate(states) if s.z_mid <= z <= s.z_max]
        previous = [None if z == states[i].z_mid else states[i].last_mask for i in active]
        for index, mask in _decode_slice(predictor, embeddings, int(z), states, active, previous, propagation):
            state = states[index]
            state.last_mask = mask
            if z == state.z_mid and state.z_min < state.z_mid:
                state.middle_mask = mask
            yield index, int(z), mask
    for state in states:
        state.last_mask = state.middle_mask
    for z in np.flatnonzero(downward)[::-1]:
        active = [i for i, s in enumerate(states) if s.z_min <= z < s.z_mid]
        previous = [states[i].last_mask for i in active]
        for index, mask in _decode_slice(predictor, embeddings, int(z), states, active, previous, propagation):
            states[index].last_mask = mask
            if z == states[index].z_min:
                states[index].last_mask = states[index].middle_mask = None
            yield index, int(z), mask


def _decode_slice(
    predictor: BoxPredictor,
    embeddings: Embeddings,
    z: int,
    states: list[_BoxState],
    active: list[int],
    previous: list[np.ndarray | None],
    propagation: Propagation,
) -> Iterator[tuple[int, np.ndarray]]:
    """(box index, mask) for the `active` boxes on slice z, each prompted from its `previous` mask."""
    prompts = np.stack([
        prompt_box(mask, states[i].object_box, states[i].object_extent, i + 1, propagation, predictor.image_size)
        for i, mask in zip(active, previous)
    ])
    yield from zip(active, predictor.predict(embeddings.get(z), prompts))
    embeddings.release([z])


def segment_volume_by_box(
    predictor: BoxPredictor,
    volume: np.ndarray,
    boxes: np.ndarray,
    propagation: Propagation,
    embeddings: Embeddings,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (box index, slice, mask) box after box, each to completion: painted in order, later boxes win."""
    for index, box in enumerate(boxes):
        state = _BoxState(predictor, box, volume.shape[1:])
        masks: dict[int, np.ndarray] = {}
        for z, previous_z in propagation_order(box):
            previous = None if previous_z is None else masks[previous_z]
            prompt = prompt_box(previous, state.object_box, state.object_extent, index + 1, propagation,
                                predictor.image_size)
            mask = next(predictor.predict(embeddings.get(z), prompt[None]))
            # Only the last mask and the middle one (where the downward pass starts) are needed.
            masks = {z: mask} if z == state.z_mid else {state.z_mid: masks[state.z_mid], z: mask}
            yield index, z, mask
        embeddings.release(range(state.z_min, state.z_max + 1))
