"""Case files: names, ground truth and predictions, read without pickle."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# How a stored `spacing` maps to the array axes (D, H, W).
SPACING_ORDERS = ("array", "xyz")


@dataclass(frozen=True)
class GroundTruth:
    """A ground-truth label map; `spacing` is None for 2D cases."""

    gts: np.ndarray
    spacing: tuple[float, float, float] | None


class PredictionError(Exception):
    """A prediction file that cannot be scored (missing, unreadable, wrong shape)."""


def is_3d(case: str) -> bool:
    """Whether a case is 3D; the organisers decide by the `3D` name prefix."""
    return case.startswith("3D")


def modality(case: str) -> str:
    """Modality of a case: the second `_`-separated token of its file name."""
    parts = Path(case).name.split("_")
    if len(parts) < 3:
        raise ValueError(f"case name {case!r} is not <2DBox|3DBox>_<Modality>_<id>.npz")
    return parts[1]


def list_cases(folder: Path) -> list[str]:
    """Sorted names of the `.npz` files in `folder`."""
    if not folder.is_dir():
        raise ValueError(f"not a folder: {folder}")
    return sorted(p.name for p in folder.iterdir() if p.suffix == ".npz" and p.is_file())


def order_spacing(spacing: np.ndarray, order: str) -> tuple[float, ...]:
    """Spacing paired with the array axes; `xyz` reverses a SimpleITK (x, y, z) spacing."""
    if order not in SPACING_ORDERS:
        raise ValueError(f"spacing order must be one of {SPACING_ORDERS}, got {order!r}")
    values = tuple(float(v) for v in np.asarray(spacing, dtype=np.float64).ravel())
    return values[::-1] if order == "xyz" else values


def load_ground_truth(path: Path, spacing_order: str = "array") -> GroundTruth:
    """Read `gts` (and `spacing` for 3D names) from a ground-truth npz."""
    try:
        with np.load(path, allow_pickle=False) as data:
            gts = np.asarray(data["gts"])
            spacing = np.asarray(data["spacing"]) if is_3d(path.name) else None
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"cannot read ground truth {path}: {error}") from error
    expected_ndim = 3 if is_3d(path.name) else 2
    if gts.ndim != expected_ndim or not np.issubdtype(gts.dtype, np.integer):
        raise ValueError(
            f"{path.name}: gts must be a {expected_ndim}D integer array, got {gts.dtype} {gts.shape}"
        )
    if gts.size and gts.min() < 0:
        raise ValueError(f"{path.name}: gts has negative labels")
    if spacing is None:
        return GroundTruth(gts, None)
    ordered = order_spacing(spacing, spacing_order)
    if len(ordered) != 3:
        raise ValueError(f"{path.name}: spacing must have 3 values, got {ordered}")
    return GroundTruth(gts, (ordered[0], ordered[1], ordered[2]))


def load_prediction(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Read `segs` from a prediction npz; raise PredictionError if it cannot be scored."""
    if not path.is_file():
        raise PredictionError("missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            segs = np.asarray(data["segs"])
    except KeyError:
        raise PredictionError("no 'segs' array") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise PredictionError(f"unreadable ({type(error).__name__})") from None
    if segs.shape != shape:
        raise PredictionError(f"shape {segs.shape}, expected {shape}")
    if not (np.issubdtype(segs.dtype, np.integer) or segs.dtype == bool):
        raise PredictionError(f"dtype {segs.dtype} is not an integer label map")
    return segs


def load_input(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read `imgs` and `boxes` from an input npz."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return np.asarray(data["imgs"]), np.asarray(data["boxes"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"cannot read input {path}: {error}") from error
