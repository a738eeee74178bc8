"""The baseline's schedule: in 3D each box runs to completion before the next, its slices encoded again
for every box; masks painted in box order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from inference.cases import load_case
from inference.labelmap import new_label_map, paint
from inference.predictor import BoxPredictor, ImageEmbedding, segment_image
from inference.propagation import Propagation, prompt_box
from inference.segment3d import BoxState, slice_range
from inference.slice_cache import Embeddings


def propagation_order(box: np.ndarray) -> Iterator[tuple[int, int | None]]:
    """Yield (slice, previous slice or None): middle up to z_max, then middle-1 down to z_min."""
    z_min, z_mid, z_max = slice_range(box)
    yield z_mid, None
    for z in range(z_mid + 1, z_max + 1):
        yield z, z - 1
    for z in range(z_mid - 1, z_min - 1, -1):
        yield z, z + 1


class EncodeEveryTime:
    """Slice embeddings as the baseline had them: computed again on every request, never kept."""

    def __init__(self, predictor: BoxPredictor, volume: np.ndarray) -> None:
        self._predictor = predictor
        self._volume = volume

    def get(self, z: int) -> ImageEmbedding:
        """Encode slice z."""
        return self._predictor.embed(self._volume[z])

    def release(self, slices: Iterable[int]) -> None:
        """Nothing is kept, so nothing to free."""


def segment_volume_by_box(
    predictor: BoxPredictor,
    volume: np.ndarray,
    boxes: np.ndarray,
    propagation: Propagation,
    embeddings: Embeddings,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (box index, slice, mask) box after box, each to completion: painted in order, later boxes win."""
    for index, box in enumerate(boxes):
        state = BoxState(predictor, box, volume.shape[1:])
        masks: dict[int, np.ndarray] = {}
        for z, previous_z in propagation_order(box):
            previous = None if previous_z is None else masks[previous_z]
            prompt = prompt_box(previous, state.object_box, state.object_extent, index + 1, propagation,
                                predictor.input_size)
            mask = next(predictor.predict(embeddings.get(z), prompt[None]))
            # Only the last mask and the middle one (where the downward pass starts) are needed.
            masks = {z: mask} if z == state.z_mid else {state.z_mid: masks[state.z_mid], z: mask}
            yield index, z, mask
        embeddings.release(range(state.z_min, state.z_max + 1))


def segment(predictor: BoxPredictor, path: Path) -> tuple[str, np.ndarray]:
    """The case's name and its label map, computed the baseline's way."""
    case = load_case(path)
    label_map = new_label_map(case.spatial_shape)
    if case.is_3d:
        slices = EncodeEveryTime(predictor, case.image)
        for index, z, mask in segment_volume_by_box(predictor, case.image, case.boxes, Propagation.BASELINE, slices):
            paint(label_map[z], mask, int(case.box_labels[index]))
    else:
        for label, mask in zip(case.box_labels, segment_image(predictor, case.image, case.boxes)):
            paint(label_map, mask, int(label))
    return case.name, label_map
