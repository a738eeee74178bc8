"""Boxes in the challenge's layout: widened as the organizers did, or read from a JSON file.

A box is x_min, y_min, x_max, y_max (2D) or x_min, y_min, z_min, x_max, y_max, z_max
(3D), inclusive integer indices of the array's x (last), y and z (first) axes.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from convert.errors import ConvertError

MODEL_SIZE = 256  # the longest side of the model's input
COORDINATES = ("voxel", "mm")


def jitter_boxes(boxes: np.ndarray, shape: tuple[int, ...], pixels: int, rng: np.random.Generator) -> np.ndarray:
    """Widen each x and y side by a random 0..pixels pixels of the 256-pixel model scale, kept inside the image.

    As the organizers' training boxes; z sides of 3D boxes stay tight (z is not rescaled).
    """
    dims = len(shape)
    height, width = shape[-2:]
    scale = max(height, width) / MODEL_SIZE
    widened = boxes.copy()
    for axis, size in ((0, width), (1, height)):
        low, high = widened[:, axis], widened[:, axis + dims]
        low -= np.round(rng.integers(0, pixels + 1, len(boxes)) * scale).astype(np.int64)
        high += np.round(rng.integers(0, pixels + 1, len(boxes)) * scale).astype(np.int64)
        np.clip(low, 0, size - 1, out=low)
        np.clip(high, 0, size - 1, out=high)
    return widened


def read_box_file(path: Path, image: sitk.Image) -> np.ndarray:
    """The boxes of a JSON file as (N, 2 * dimension) inclusive voxel indices of `image` (x first).

    The file is `{"coordinates": "voxel" | "mm", "boxes": [[x_min, y_min, z_min, x_max, y_max, z_max], ...]}`
    (four numbers each for a 2D image, and in voxels for a one-slice volume, whose z is 0).
    Voxel boxes are indices as ITK-SNAP and 3D Slicer show them; mm boxes are two
    opposite corners in physical (LPS) coordinates, and their voxel box is the one
    that holds all corners.
    """
    path = Path(path)
    dims = image.GetDimension()
    coordinates, rows = _parse(path, dims, one_slice=dims == 3 and image.GetDepth() == 1)
    rows = [row if len(row) == 2 * dims else [*row[:2], 0, *row[2:], 0] for row in rows]
    size = np.array(image.GetSize())
    boxes = []
    for number, row in enumerate(rows, 1):
        low, high = np.array(row[:dims], dtype=np.float64), np.array(row[dims:], dtype=np.float64)
        if coordinates == "mm":
            corners = [image.TransformPhysicalPointToContinuousIndex(tuple(map(float, corner)))
                       for corner in itertools.product(*zip(low, high))]
            low, high = np.min(corners, axis=0), np.max(corners, axis=0)
        indices = np.sort(np.rint(np.stack([low, high])), axis=0).astype(np.int64)
        if (indices[0] < 0).any() or (indices[1] >= size).any():
            raise ConvertError(path, f"box {number} ({coordinates} {row}) lies outside the image: voxel box "
                                     f"{indices[0].tolist()}..{indices[1].tolist()}, image size {size.tolist()}")
        boxes.append(indices.ravel())
    return np.array(boxes, dtype=np.int64).reshape(len(boxes), 2 * dims)


def _parse(path: Path, dims: int, one_slice: bool) -> tuple[str, list[list[float]]]:
    """The coordinates and the rows of a box file, each row checked to hold 2 * dims finite numbers.

    Voxel boxes of a one-slice volume may leave z out (four numbers).
    """
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConvertError(path, f"cannot read the box file: {err}") from err
    if not isinstance(data, dict) or data.get("coordinates") not in COORDINATES or not isinstance(data.get("boxes"), list):
        raise ConvertError(path, 'expected {"coordinates": "voxel" or "mm", "boxes": [[...], ...]}')
    rows = data["boxes"]
    if not rows:
        raise ConvertError(path, "no boxes")
    for number, row in enumerate(rows, 1):
        numeric = isinstance(row, list) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in row)
        short = one_slice and data["coordinates"] == "voxel" and numeric and len(row) == 4
        if not numeric or (len(row) != 2 * dims and not short):
            raise ConvertError(path, f"box {number} must be {2 * dims} numbers for a {dims}D image, got {row!r}")
    return data["coordinates"], rows


def crop_around(boxes: np.ndarray, shape: tuple[int, ...], margin: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The array region ([z,] y, x) that holds every box grown by `margin`, as (start, stop) within `shape`."""
    dims = len(shape)
    low = boxes[:, :dims].min(axis=0)[::-1] - margin
    high = boxes[:, dims:].max(axis=0)[::-1] + 1 + margin
    start = np.maximum(low, 0)
    stop = np.minimum(high, shape)
    return tuple(int(v) for v in start), tuple(int(v) for v in stop)
