"""Masks of the slices between two segmented slices, by shape-based (signed distance) interpolation."""

from __future__ import annotations

import cv2
import numpy as np


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance to the mask's border: positive inside (>= 1), negative outside (<= -1).

    A mask without inside (or without outside) pixels has no border: it is then
    as far as the slice is wide, so interpolation towards it moves at most that far.
    """
    far = float(sum(mask.shape))
    if not mask.any():
        return np.full(mask.shape, -far, dtype=np.float32)
    if mask.all():
        return np.full(mask.shape, far, dtype=np.float32)
    as_uint8 = mask.astype(np.uint8)
    inside = cv2.distanceTransform(as_uint8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    outside = cv2.distanceTransform(1 - as_uint8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return inside - outside


def shifted(values: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """`values` (H, W) moved by `offset` (rows, columns) pixels, bilinearly; edge values extend inwards."""
    matrix = np.array([[1.0, 0.0, offset[1]], [0.0, 1.0, offset[0]]])
    return cv2.warpAffine(values, matrix, (values.shape[1], values.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def interpolate_masks(lower: np.ndarray, upper: np.ndarray, gap: int) -> list[np.ndarray]:
    """The `gap - 1` boolean masks strictly between two (H, W) masks `gap` slices apart, nearest `lower` first.

    Slice k of the gap, at w = k / gap: each mask's signed distance is moved so that
    its centroid lies at the blend (1 - w) x lower's + w x upper's centroid, and the
    slice takes the pixels where (1 - w) x lower's + w x upper's moved distance is
    positive. A shape grows, shrinks and moves from one mask to the other, and does
    not vanish half way when the two do not overlap. Where one mask is empty the
    object ends inside the gap, at a place the distances cannot tell: each slice then
    takes the mask of the nearer end (the lower one at the middle).
    """
    if gap < 2:
        return []
    steps = range(1, gap)
    if not lower.any() or not upper.any():
        return [(lower if 2 * k <= gap else upper).copy() for k in steps]
    low, high = signed_distance(lower), signed_distance(upper)
    low_centre, high_centre = np.argwhere(lower).mean(axis=0), np.argwhere(upper).mean(axis=0)
    masks = []
    for k in steps:
        w = k / gap
        centre = (1 - w) * low_centre + w * high_centre
        blended = (1 - w) * shifted(low, centre - low_centre) + w * shifted(high, centre - high_centre)
        masks.append(blended > 0)
    return masks
