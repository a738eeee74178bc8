"""3D cases: segment each box from its middle slice outwards, one slice at a time.

Each slice is prompted with the box of the previous slice's mask (grown by 3
pixels), or the object's own box where that mask is empty. Slice embeddings are
computed once per case and dropped as soon as no remaining box needs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum

import numpy as np

from inference.predictor import BoxPredictor, ImageEmbedding
from inference.transforms import baseline_mask_box, mask_box, pixel_extent


class Propagation(str, Enum):
    """How the prompt box of the next slice is derived from the previous mask."""

    CLIPPED = "clipped"  # previous mask's box, kept inside the object's own x/y box
    BASELINE = "baseline"  # exactly as the challenge baseline


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


class SliceEmbeddings:
    """Encodes slices on first use and frees each once its last box is done."""

    def __init__(self, predictor: BoxPredictor, volume: np.ndarray, boxes: np.ndarray) -> None:
        self._predictor = predictor
        self._volume = volume
        self._pending = np.zeros(volume.shape[0], dtype=np.int64)
        for box in boxes:
            z_min, _, z_max = slice_range(box)
            self._pending[z_min : z_max + 1] += 1
        self._cache: dict[int, ImageEmbedding] = {}
        self.encoded = 0
        self.peak_cached = 0

    def get(self, z: int) -> ImageEmbedding:
        """Embedding of slice z, encoding it if it is not cached."""
        if z not in self._cache:
            self._cache[z] = self._predictor.embed(self._volume[z])
            self.encoded += 1
            self.peak_cached = max(self.peak_cached, len(self._cache))
        return self._cache[z]

    def release(self, box: np.ndarray) -> None:
        """Mark a box as done; drop embeddings no remaining box needs."""
        z_min, _, z_max = slice_range(box)
        for z in range(z_min, z_max + 1):
            self._pending[z] -= 1
            if self._pending[z] == 0:
                self._cache.pop(z, None)


def _prompt_box(
    previous: np.ndarray | None,
    object_box: np.ndarray,
    object_extent: np.ndarray,
    label: int,
    propagation: Propagation,
    size: int,
) -> np.ndarray:
    if previous is None:
        return object_box
    if propagation is Propagation.BASELINE:
        box = baseline_mask_box(previous, label, size)
        return object_box if box is None else box
    box = mask_box(previous, size)
    if box is None:
        return object_box
    clipped = np.concatenate([np.maximum(box[:2], object_extent[:2]), np.minimum(box[2:], object_extent[2:])])
    empty = clipped[0] > clipped[2] or clipped[1] > clipped[3]
    return object_box if empty else clipped


def segment_volume(
    predictor: BoxPredictor,
    volume: np.ndarray,
    boxes: np.ndarray,
    propagation: Propagation = Propagation.CLIPPED,
    embeddings: SliceEmbeddings | None = None,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (box index, slice, boolean (H, W) mask) for a (D, H, W) volume and (N, 6) boxes.

    Boxes are processed in order, each to completion, so painting the masks as
    they come makes later boxes overwrite earlier ones.
    """
    embeddings = embeddings or SliceEmbeddings(predictor, volume, boxes)
    slice_shape = volume.shape[1:]
    for index, box in enumerate(boxes):
        object_box = predictor.to_model_space(box[[0, 1, 3, 4]], slice_shape)
        object_extent = pixel_extent(box[[0, 1, 3, 4]], slice_shape, predictor.image_size)
        z_mid = slice_range(box)[1]
        masks: dict[int, np.ndarray] = {}
        for z, previous_z in propagation_order(box):
            previous = None if previous_z is None else masks[previous_z]
            prompt = _prompt_box(previous, object_box, object_extent, index + 1, propagation, predictor.image_size)
            mask = next(predictor.predict(embeddings.get(z), prompt[None]))
            # Only the last mask and the middle one (where the downward pass starts) are needed.
            masks = {z: mask} if z == z_mid else {z_mid: masks[z_mid], z: mask}
            yield index, z, mask
        embeddings.release(box)
