"""Pre- and post-processing of the LiteMedSAM baseline, in numpy and OpenCV.

Sizes are (height, width). "Model space" is the square model input (256x256):
the image is resized so its longest side fits, then padded bottom/right.
"""

from __future__ import annotations

import cv2
import numpy as np


def resized_shape(height: int, width: int, input_size: int) -> tuple[int, int]:
    """Shape after resizing the longest side to `input_size`, rounded half up like the baseline."""
    scale = input_size * 1.0 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def resize_longest_side(image: np.ndarray, input_size: int) -> np.ndarray:
    """Resize a 2D (H, W) or (H, W, C) array so its longest side is `input_size` (INTER_AREA)."""
    new_h, new_w = resized_shape(image.shape[0], image.shape[1], input_size)
    return cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)


def preprocess(image: np.ndarray, input_size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """uint8 (H, W) grey or (H, W, 3) image -> (1, 3, input_size, input_size) float32 input and resized shape.

    A grey image is resized once and repeated to three channels, which equals the
    baseline's resizing of the three identical channels.
    """
    resized = resize_longest_side(image, input_size).astype(np.float64)
    low = resized.min()
    resized = (resized - low) / max(resized.max() - low, 1e-8)
    new_h, new_w = resized.shape[:2]
    chw = np.zeros((3, input_size, input_size), dtype=np.float32)
    if resized.ndim == 2:
        chw[:, :new_h, :new_w] = resized[None]
    else:
        chw[:, :new_h, :new_w] = resized.transpose(2, 0, 1)
    return chw[None], (new_h, new_w)


def scale_boxes(boxes: np.ndarray, original_shape: tuple[int, int], input_size: int) -> np.ndarray:
    """(N, 4) x_min, y_min, x_max, y_max in image pixels -> model space, truncated to int."""
    ratio = input_size / max(original_shape)
    return np.trunc(np.asarray(boxes, dtype=np.float64) * ratio).astype(np.int64)


def postprocess(logits: np.ndarray, resized: tuple[int, int], original_shape: tuple[int, int]) -> np.ndarray:
    """(input_size, input_size) low-res logits -> boolean (H, W) mask.

    Crop to the unpadded area, bilinear resize with half-pixel centres
    (align_corners=False), sigmoid, threshold > 0.5. The sigmoid is evaluated only
    where the logit is positive: elsewhere it cannot exceed 0.5 (float32 rounding
    can still put a tiny positive logit at exactly 0.5, so those are evaluated).
    """
    cropped = np.ascontiguousarray(logits[: resized[0], : resized[1]], dtype=np.float32)
    height, width = original_shape
    upsampled = cv2.resize(cropped, (width, height), interpolation=cv2.INTER_LINEAR)
    mask = upsampled > 0
    positive = np.flatnonzero(mask)
    with np.errstate(over="ignore"):
        mask.flat[positive] = 1.0 / (1.0 + np.exp(-upsampled.flat[positive])) > 0.5
    return mask
