"""Admission of a case before it is decompressed: would its arrays fit in the memory left?"""

from __future__ import annotations

import math

import numpy as np

from casefiles import CaseError
from inference.slice_cache import CACHE_BYTES

# One slice's working arrays (model input, embedding, image half, logits, masks) beside the cache.
SLICE_WORKING_BYTES = 128 * 2**20
# Memory a case needs besides imgs, its label map and its boxes.
WORKING_MEMORY = CACHE_BYTES + SLICE_WORKING_BYTES


def case_memory(shape: tuple[int, ...], dtype: np.dtype, three_d: bool) -> int:
    """Bytes a case holds while it is segmented: imgs as stored, its uint8 copy if converted, the uint16 label map."""
    voxels = math.prod(shape)
    spatial = math.prod(shape if three_d else shape[:2])
    converted = 0 if dtype == np.uint8 else voxels
    return voxels * dtype.itemsize + converted + 2 * spatial


def memory_needed(headers: dict[str, tuple[tuple[int, ...], np.dtype]], three_d: bool) -> int | None:
    """Bytes a case holds while it is segmented: imgs, its label map, the boxes and `WORKING_MEMORY`; None without imgs."""
    if "imgs" not in headers:
        return None
    shape, dtype = headers["imgs"]
    box_shape, box_dtype = headers.get("boxes", ((0,), np.dtype(np.float64)))
    # The boxes as stored and their float64 working copies (a huge box array inflates like a huge image).
    boxes = math.prod(box_shape) * (box_dtype.itemsize + 4 * 8)
    return case_memory(shape, dtype, three_d) + boxes + WORKING_MEMORY


def check_memory(
    name: str, headers: dict[str, tuple[tuple[int, ...], np.dtype]], three_d: bool, available: int
) -> None:
    """CaseError if imgs, its label map, the boxes and `WORKING_MEMORY` would not fit in `available` bytes."""
    need = memory_needed(headers, three_d)
    if need is None:
        return  # load_arrays names what is missing or unreadable
    if need > available:
        shape, dtype = headers["imgs"]
        box_count = headers.get("boxes", ((0,),))[0][0]
        raise CaseError(
            name,
            f"too large for the memory given: imgs {shape} {dtype}, its label map and {box_count:,} boxes need "
            f"about {need / 2**30:.1f} GiB, {max(available, 0) / 2**30:.1f} GiB available",
        )
