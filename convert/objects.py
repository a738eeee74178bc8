"""Label images to the challenge's objects: one per label value, or one per connected component of each value."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import cc3d
import numpy as np

MAX_OBJECTS = np.iinfo(np.uint16).max
# Face, edge and corner neighbours: 26 in 3D, 8 in 2D.
CONNECTIVITY = {2: 8, 3: 26}
# Components smaller than this are dust and dropped (`--min-size`), as the organizers did.
DEFAULT_MIN_SIZE = {2: 10, 3: 100}


class ObjectMode(str, Enum):
    """What one object of the case is."""

    LABELS = "labels"  # every voxel of one label value
    INSTANCES = "instances"  # one connected component of one label value


@dataclass(frozen=True)
class Objects:
    """The objects of a label image: the `gts` map (1..N) and, for object k at k - 1, its source value and size."""

    gts: np.ndarray
    source_labels: tuple[int, ...]
    voxels: tuple[int, ...]


def integer_labels(labels: np.ndarray) -> np.ndarray:
    """The label image as int64; ValueError for fractional, negative or non-scalar values."""
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all() or (labels != np.round(labels)).any():
            raise ValueError(f"not a label image: it holds non-integer values ({labels.dtype})")
    elif labels.dtype.kind not in "biu":
        raise ValueError(f"not a label image: values of type {labels.dtype}")
    values = labels.astype(np.int64)
    if values.min(initial=0) < 0:
        raise ValueError("not a label image: it holds negative values")
    return values


def find_objects(labels: np.ndarray, mode: ObjectMode, min_size: int | None = None) -> Objects:
    """Number the objects of an integer (H, W) or (D, H, W) label image 1..N.

    labels: one object per label value, in increasing value. instances: the
    connected components of each label value (26-connected in 3D, 8 in 2D), those
    under `min_size` voxels dropped (default 100 in 3D, 10 in 2D), ordered by label
    value, then by where each component first appears in array (C) order.
    """
    if not labels.any():
        raise ValueError("the label image is empty (no value above 0)")
    if mode is ObjectMode.LABELS:
        values, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        lookup = np.arange(len(values), dtype=np.int64) + (0 if values[0] == 0 else 1)
        numbered = lookup[inverse].reshape(labels.shape)
        kept = values != 0
        return _objects(numbered, values[kept], counts[kept])
    minimum = DEFAULT_MIN_SIZE[labels.ndim] if min_size is None else min_size
    components = cc3d.connected_components(labels, connectivity=CONNECTIVITY[labels.ndim])
    ids, first = np.unique(components.ravel(), return_index=True)
    counts = np.bincount(components.ravel())[ids]
    values = labels.ravel()[first]
    keep = (ids != 0) & (counts >= minimum)
    if not keep.any():
        raise ValueError(f"no object left: every component is smaller than {minimum} voxels (--min-size)")
    order = np.lexsort((first[keep], values[keep]))
    lookup = np.zeros(int(ids.max()) + 1, dtype=np.int64)
    lookup[ids[keep][order]] = np.arange(1, len(order) + 1)
    return _objects(lookup[components], values[keep][order], counts[keep][order])


def _objects(numbered: np.ndarray, source_labels: np.ndarray, voxels: np.ndarray) -> Objects:
    if len(source_labels) > MAX_OBJECTS:
        raise ValueError(f"{len(source_labels)} objects: a case holds at most {MAX_OBJECTS}")
    return Objects(numbered.astype(np.uint16), tuple(int(v) for v in source_labels), tuple(int(n) for n in voxels))
