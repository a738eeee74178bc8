"""Ground-truth, prediction and input files, read through the shared case-file contract."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from casefiles import CaseError, is_3d, load_arrays

# How a stored `spacing` maps to the array axes (D, H, W).
SPACING_ORDERS = ("array", "xyz")


@dataclass(frozen=True)
class GroundTruth:
    """A ground-truth label map; `spacing` is None for 2D cases."""

    gts: np.ndarray
    spacing: tuple[float, float, float] | None


def order_spacing(spacing: np.ndarray, order: str) -> tuple[float, ...]:
    """Spacing paired with the array axes; `xyz` reverses a SimpleITK (x, y, z) spacing."""
    if order not in SPACING_ORDERS:
        raise ValueError(f"spacing order must be one of {SPACING_ORDERS}, got {order!r}")
    values = tuple(float(v) for v in np.asarray(spacing, dtype=np.float64).ravel())
    return values[::-1] if order == "xyz" else values


def load_ground_truth(path: Path, spacing_order: str = "array") -> GroundTruth:
    """Read `gts` (and `spacing` for 3D names) from a ground-truth npz; CaseError if it is unusable."""
    name = Path(path).name
    volume = is_3d(name)
    arrays = load_arrays(path, ("gts", "spacing") if volume else ("gts",))
    gts = arrays["gts"]
    expected_ndim = 3 if volume else 2
    if gts.ndim != expected_ndim or not np.issubdtype(gts.dtype, np.integer):
        raise CaseError(name, f"gts must be a {expected_ndim}D integer array, got {gts.dtype} {gts.shape}")
    if gts.size and gts.min() < 0:
        raise CaseError(name, "gts has negative labels")
    if not volume:
        return GroundTruth(gts, None)
    ordered = order_spacing(arrays["spacing"], spacing_order)
    if len(ordered) != 3:
        raise CaseError(name, f"spacing must have 3 values, got {ordered}")
    return GroundTruth(gts, (ordered[0], ordered[1], ordered[2]))


def load_prediction(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Read `segs` from a prediction npz; CaseError says why it cannot be scored."""
    name = Path(path).name
    segs = load_arrays(path, ("segs",))["segs"]
    if segs.shape != shape:
        raise CaseError(name, f"segs shape {segs.shape}, expected {shape}")
    if not (np.issubdtype(segs.dtype, np.integer) or segs.dtype == bool):
        raise CaseError(name, f"segs dtype {segs.dtype} is not an integer label map")
    return segs


def load_input(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """`imgs` and `boxes` of an input npz (for drawing, not validated further)."""
    arrays = load_arrays(path, ("imgs", "boxes"))
    return arrays["imgs"], arrays["boxes"]
