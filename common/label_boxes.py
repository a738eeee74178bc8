"""The challenge's boxes from a label map: the tight inclusive box of each object, x first."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def label_boxes(labels: np.ndarray, count: int | None = None) -> np.ndarray:
    """Tight inclusive box of each object 1..count (default: the largest label), row k - 1 for object k.

    A 2D (H, W) map gives (N, 4) x_min, y_min, x_max, y_max; a 3D (D, H, W) map gives
    (N, 6) x_min, y_min, z_min, x_max, y_max, z_max. ValueError if a number of 1..count
    has no voxel.
    """
    count = int(labels.max(initial=0)) if count is None else count
    found = ndimage.find_objects(labels, max_label=count)
    missing = [number for number, where in enumerate(found, 1) if where is None]
    if missing:
        raise ValueError(f"the objects must be numbered 1..{count} without gaps; no voxel has {missing[:5]}")
    # find_objects reports array axes ([z,] y, x); boxes list x first.
    starts = np.array([[s.start for s in where][::-1] for where in found], dtype=np.int64).reshape(count, labels.ndim)
    stops = np.array([[s.stop - 1 for s in where][::-1] for where in found], dtype=np.int64).reshape(count, labels.ndim)
    return np.concatenate([starts, stops], axis=1).reshape(count, 2 * labels.ndim)
