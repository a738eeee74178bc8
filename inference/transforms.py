"""Pre- and post-processing of the LiteMedSAM baseline, in numpy and OpenCV.

Sizes are (height, width). "Model space" is the square model input (256x256):
the image is resized so its longest side fits, then padded bottom/right.
"""

from __future__ import annotations

import cv2
import numpy as np

BOX_SHIFT = 3  # pixels added on every side of a box derived from a mask


def resized_shape(height: int, width: int, target: int) -> tuple[int, int]:
    """Shape after resizing the longest side to `target`, rounded half up like the baseline."""
    scale = target * 1.0 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def resize_longest_side(image: np.ndarray, target: int) -> np.ndarray:
    """Resize a 2D (H, W) or (H, W, C) array so its longest side is `target` (INTER_AREA)."""
    new_h, new_w = resized_shape(image.shape[0], image.shape[1], target)
    return cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)


def preprocess(image: np.ndarray, target: int) -> tuple[np.ndarray, tuple[int, int]]:
    """uint8 (H, W) grey or (H, W, 3) image -> (1, 3, target, target) float32 input and resized shape.

    A grey image is resized once and repeated to three channels, which equals the
    baseline's resizing of the three identical channels.
    """
    resized = resize_longest_side(image, target).astype(np.float64)
    low = resized.min()
    resized = (resized - low) / max(resized.max() - low, 1e-8)
    new_h, new_w = resized.shape[:2]
    chw = np.zeros((3, target, target), dtype=np.float32)
    if resized.ndim == 2:
        chw[:, :new_h, :new_w] = resized[None]
    else:
        chw[:, :new_h, :new_w] = resized.transpose(2, 0, 1)
    return chw[None], (new_h, new_w)


def scale_boxes(boxes: np.ndarray, original_shape: tuple[int, int], target: int) -> np.ndarray:
    """(N, 4) x_min, y_min, x_max, y_max in image pixels -> model space, truncated to int."""
    ratio = target / max(original_shape)
    return np.trunc(np.asarray(boxes, dtype=np.float64) * ratio).astype(np.int64)


def postprocess(logits: np.ndarray, resized: tuple[int, int], original_shape: tuple[int, int]) -> np.ndarray:
    """(target, target) low-res logits -> boolean (H, W) mask.

    Crop to the unpadded area, bilinear resize with half-pixel centres
    (align_corners=False), sigmoid, threshold > 0.5.
    """
    cropped = np.ascontiguousarray(logits[: resized[0], : resized[1]], dtype=np.float32)
    height, width = original_shape
    upsampled = cv2.resize(cropped, (width, height), interpolation=cv2.INTER_LINEAR)
    with np.errstate(over="ignore"):
        probabilities = 1.0 / (1.0 + np.exp(-upsampled))
    return probabilities > 0.5


def pixel_extent(box: np.ndarray, original_shape: tuple[int, int], target: int) -> np.ndarray:
    """Model-space pixels covered by the inclusive pixel box (x0, y0, x1, y1), as an inclusive box.

    Pixel x spans [x, x + 1), so the far edge maps to ceil((x1 + 1) * scale) - 1;
    plain scaling (as for prompt boxes) would lose up to one scale step there
    when a small image is enlarged.
    """
    scale = target / max(original_shape)
    box = np.asarray(box, dtype=np.float64)
    low = np.floor(box[:2] * scale)
    high = np.ceil((box[2:] + 1) * scale) - 1
    return np.clip(np.concatenate([low, high]), 0, target - 1).astype(np.int64)


def mask_box(mask: np.ndarray, target: int) -> np.ndarray | None:
    """Model-space box around a non-empty (H, W) mask, grown by BOX_SHIFT; None if empty.

    The baseline resized the previous slice's label mask to model space with
    INTER_AREA and took the box there, so whether a partly covered pixel counted
    depended on the label's value; here the box is the model-space extent of the
    mask's pixels, the same for every label.
    """
    box = _bounding_box(mask)
    if box is None:
        return None
    return _grow(pixel_extent(box, mask.shape, target), target)


def baseline_mask_box(mask: np.ndarray, label: int, target: int) -> np.ndarray | None:
    """The baseline's box from the previous slice: uint8 label mask resized with INTER_AREA.

    The baseline stored the mask with value `label` in uint8 (wrapping past 255),
    so the value is kept to reproduce its boxes exactly.
    """
    values = mask.astype(np.uint8) * np.uint8(label % 256)
    box = _bounding_box(resize_longest_side(values, target))
    return None if box is None else _grow(box, target)


def _bounding_box(mask: np.ndarray) -> np.ndarray | None:
    """Inclusive (x0, y0, x1, y1) of the nonzero pixels of a 2D array, None if there are none."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1], rows[-1]])


def _grow(box: np.ndarray, target: int) -> np.ndarray:
    """Grow a model-space box by BOX_SHIFT on every side, clipped to [0, target] like the baseline."""
    return np.clip(box + np.array([-BOX_SHIFT, -BOX_SHIFT, BOX_SHIFT, BOX_SHIFT]), 0, target)
