"""3D cases: segment each box from its middle slice outwards, one slice at a time.

Each slice is prompted with the box of the previous slice's mask (grown by 3
pixels), or the object's own box where that mask is empty. Slice embeddings are
computed once per case and dropped as soon as no remaining box needs them.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from inference.predictor import BoxPredictor, ImageEmbedding
from inference.propagation import Propagation, pixel_extent, prompt_box


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

    def cached_slices(self) -> list[int]:
        """The slices whose embeddings are held now, sorted."""
        return sorted(self._cache)

    def release(self, box: np.ndarray) -> None:
        """Mark a box as done; drop embeddings no remaining box needs."""
        z_min, _, z_max = slice_range(box)
        for z in range(z_min, z_max + 1):
            self._pending[z] -= 1
            if self._pending[z] == 0:
                self._cache.pop(z, None)


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
            prompt = prompt_box(previous, object_box, object_extent, index + 1, propagation, predictor.image_size)
            mask = next(predictor.predict(embeddings.get(z), prompt[None]))
            # Only the last mask and the middle one (where the downward pass starts) are needed.
            masks = {z: mask} if z == z_mid else {z_mid: masks[z_mid], z: mask}
            yield index, z, mask
        embeddings.release(box)
