"""3D propagation's prompt boxes: how the box for the next slice comes from the previous slice's mask.

Two modes: `baseline` reproduces the challenge baseline's boxes exactly; `clipped`
(the default) takes the mask's extent in whole model-space pixels and keeps the box
inside the object's own x/y box.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from inference.transforms import resize_longest_side

BOX_SHIFT = 3  # pixels added on every side of a box derived from a mask


class Propagation(str, Enum):
    """How the prompt box of the next slice is derived from the previous mask."""

    CLIPPED = "clipped"  # previous mask's box, kept inside the object's own x/y box
    BASELINE = "baseline"  # exactly as the challenge baseline


def prompt_box(
    previous: np.ndarray | None,
    object_box: np.ndarray,
    object_extent: np.ndarray,
    label: int,
    propagation: Propagation,
    input_size: int,
) -> np.ndarray:
    """The model-space prompt (x0, y0, x1, y1) for a slice, from the mask of the slice before it.

    - `previous` is that slice's boolean (H, W) mask, or None on the box's middle
      slice, where the object's own `object_box` (its scaled x/y box) is the prompt.
    - An empty previous mask also falls back to `object_box`: the object may reappear.
    - `baseline`: the box of the previous mask as the baseline computed it (uint8 mask
      holding `label`, resized with INTER_AREA), grown by BOX_SHIFT.
    - `clipped`: the previous mask's whole-pixel extent in model space grown by
      BOX_SHIFT, then intersected with `object_extent` (the object's x/y box in whole
      model-space pixels), so a leak on one slice cannot widen every slice after it.
      An empty intersection falls back to `object_box`.
    """
    if previous is None:
        return object_box
    if propagation is Propagation.BASELINE:
        box = baseline_mask_box(previous, label, input_size)
        return object_box if box is None else box
    box = mask_box(previous, input_size)
    if box is None:
        return object_box
    clipped = np.concatenate([np.maximum(box[:2], object_extent[:2]), np.minimum(box[2:], object_extent[2:])])
    empty = clipped[0] > clipped[2] or clipped[1] > clipped[3]
    return object_box if empty else clipped


def pixel_extent(box: np.ndarray, original_shape: tuple[int, int], input_size: int) -> np.ndarray:
    """Model-space pixels covered by the inclusive pixel box (x0, y0, x1, y1), as an inclusive box.

    Pixel x spans [x, x + 1), so the far edge maps to ceil((x1 + 1) * scale) - 1;
    plain scaling (as for prompt boxes) would lose up to one scale step there
    when a small image is enlarged.
    """
    scale = input_size / max(original_shape)
    box = np.asarray(box, dtype=np.float64)
    low = np.floor(box[:2] * scale)
    high = np.ceil((box[2:] + 1) * scale) - 1
    return np.clip(np.concatenate([low, high]), 0, input_size - 1).astype(np.int64)


def mask_box(mask: np.ndarray, input_size: int) -> np.ndarray | None:
    """Model-space box around a non-empty (H, W) mask, grown by BOX_SHIFT; None if empty.

    The baseline resized the previous slice's label mask to model space with
    INTER_AREA and took the box there, so whether a partly covered pixel counted
    depended on the label's value; here the box is the model-space extent of the
    mask's pixels, the same for every label.
    """
    box = _bounding_box(mask)
    if box is None:
        return None
    return _grow(pixel_extent(box, mask.shape, input_size), input_size)


def baseline_mask_box(mask: np.ndarray, label: int, input_size: int) -> np.ndarray | None:
    """The baseline's box from the previous slice: uint8 label mask resized with INTER_AREA.

    The baseline stored the mask with value `label` in uint8 (wrapping past 255),
    so the value is kept to reproduce its boxes exactly.
    """
    values = mask.astype(np.uint8) * np.uint8(label % 256)
    box = _bounding_box(resize_longest_side(values, input_size))
    return None if box is None else _grow(box, input_size)


def _bounding_box(mask: np.ndarray) -> np.ndarray | None:
    """Inclusive (x0, y0, x1, y1) of the nonzero pixels of a 2D array, None if there are none."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1], rows[-1]])


def _grow(box: np.ndarray, input_size: int) -> np.ndarray:
    """Grow a model-space box by BOX_SHIFT on every side, clipped to [0, input_size] like the baseline."""
    return np.clip(box + np.array([-BOX_SHIFT, -BOX_SHIFT, BOX_SHIFT, BOX_SHIFT]), 0, input_size)
