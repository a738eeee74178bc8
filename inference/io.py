"""Input cases and output label maps: validate what a case holds, write `segs` atomically.

Names, discovery and safe npz reading are the shared contract in `casefiles`; this
module adds what inference needs on top and knows nothing about models.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from casefiles import CaseError, is_3d, load_arrays

MAX_LABEL = int(np.iinfo(np.uint16).max)
# Real boxes sometimes end one pixel past the image (an exclusive max written as
# inclusive) or carry a few pixels of jitter; clip such overshoots rather than
# lose the whole case, but treat anything further out as a broken file.
BOX_OVERSHOOT_PX = 5
# The scorer reads the output folder on the host as another user than the
# container's root; mkstemp creates files 0600, which it could not read.
OUTPUT_FILE_MODE = 0o644


@dataclass(frozen=True)
class Case:
    """One validated input case."""

    name: str
    image: np.ndarray
    boxes: np.ndarray
    spacing: tuple[float, float, float] | None

    @property
    def is_3d(self) -> bool:
        """Whether the case is a volume (name starts with ``3D``)."""
        return is_3d(self.name)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Shape of the label map: (H, W) for 2D, (D, H, W) for 3D."""
        return tuple(self.image.shape) if self.is_3d else tuple(self.image.shape[:2])


def load_case(path: Path) -> Case:
    """Read and validate one case file; raise CaseError naming the file and the problem."""
    path = Path(path)
    name = path.name
    volume = is_3d(name)
    arrays = load_arrays(path, ("imgs", "boxes"), optional=("spacing",))
    image = arrays["imgs"]
    _check_image(name, image, volume)
    spatial = image.shape if volume else image.shape[:2]
    boxes = _check_boxes(name, arrays["boxes"], spatial, volume)
    spacing = None if "spacing" not in arrays else _check_spacing(name, arrays["spacing"])
    return Case(name=name, image=image, boxes=boxes, spacing=spacing)


def new_label_map(case: Case) -> np.ndarray:
    """Return an empty (all background) uint16 label map with the case's spatial shape."""
    return np.zeros(case.spatial_shape, dtype=np.uint16)


def paint(label_map: np.ndarray, mask: np.ndarray, label: int) -> None:
    """Set the pixels of ``mask`` to ``label`` in place: the compositing rule of the challenge.

    Object k (box k, 1-based in file order) gets value k and background stays 0.
    Where objects overlap the later box wins, so callers paint in box order and
    each call overwrites whatever earlier boxes left under its mask.
    """
    _check_paint(label_map, mask, label)
    label_map[mask] = label


def paint_over_earlier(label_map: np.ndarray, mask: np.ndarray, label: int) -> None:
    """Like `paint`, but in any order: pixels a later box (a larger label) holds keep it.

    Painting every box's masks this way, in whatever order they come, gives the
    label map that painting them in box order with `paint` gives.
    """
    _check_paint(label_map, mask, label)
    label_map[mask & (label_map < label)] = label


def _check_paint(label_map: np.ndarray, mask: np.ndarray, label: int) -> None:
    """Reject a non-boolean or mis-shaped mask and a label outside 1..MAX_LABEL."""
    if mask.dtype != np.bool_:
        raise ValueError(f"mask must be boolean, got {mask.dtype}")
    if mask.shape != label_map.shape:
        raise ValueError(f"mask shape {mask.shape} != label map shape {label_map.shape}")
    if not 1 <= label <= MAX_LABEL:
        raise ValueError(f"label {label} outside 1..{MAX_LABEL}")


def write_segmentation(
    output_dir: Path,
    name: str,
    segs: np.ndarray,
    *,
    expected_shape: tuple[int, ...] | None = None,
) -> Path:
    """Atomically write ``segs`` as uint16 under key ``segs`` to ``output_dir/name``."""
    if Path(name).name != name or not name.endswith(".npz"):
        raise ValueError(f"output name must be a bare file name ending in .npz, got {name!r}")
    labels = _as_uint16_labels(name, segs)
    want_ndim = 3 if is_3d(name) else 2
    if labels.ndim != want_ndim:
        raise ValueError(f"{name}: segs must have {want_ndim} dimensions, got shape {segs.shape}")
    if expected_shape is not None and labels.shape != tuple(expected_shape):
        want = tuple(expected_shape)
        raise ValueError(f"{name}: segs shape {labels.shape} != case shape {want}")

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    final = output_dir / name
    # The temporary name does not end in .npz, so nothing that globs the output
    # folder (a scorer, a second run) can mistake a half-written file for a result.
    fd, tmp_name = tempfile.mkstemp(dir=output_dir, prefix=f".{name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez_compressed(handle, segs=labels)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, OUTPUT_FILE_MODE)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def _check_image(name: str, image: np.ndarray, is_3d: bool) -> None:
    if image.dtype != np.uint8:
        raise CaseError(name, f"imgs must be uint8 (0..255), got {image.dtype}")
    if is_3d and image.ndim != 3:
        raise CaseError(name, f"3D case: imgs must be (D, H, W), got shape {image.shape}")
    if not is_3d and (image.ndim != 3 or image.shape[2] != 3):
        raise CaseError(name, f"2D case: imgs must be (H, W, 3), got shape {image.shape}")
    if 0 in image.shape:
        raise CaseError(name, f"imgs is empty, shape {image.shape}")


def _check_boxes(
    name: str, raw: np.ndarray, spatial: tuple[int, ...], is_3d: bool
) -> np.ndarray:
    ncols = 6 if is_3d else 4
    layout = "x_min,y_min,z_min,x_max,y_max,z_max" if is_3d else "x_min,y_min,x_max,y_max"
    if raw.dtype.kind not in "iuf":
        raise CaseError(name, f"boxes must be integer or float numbers, got {raw.dtype}")
    if raw.size == 0:
        return np.zeros((0, ncols), dtype=np.int64)
    if raw.ndim != 2 or raw.shape[1] != ncols:
        raise CaseError(name, f"boxes must be (N, {ncols}) as {layout}, got shape {raw.shape}")
    # Checks run in float64: exact for every integer an image can index, and
    # huge or non-finite values fail a check instead of overflowing a cast.
    boxes = raw.astype(np.float64)
    if not np.isfinite(boxes).all():
        rows = _bad_rows(~np.isfinite(boxes))
        raise CaseError(name, f"boxes contain NaN or infinity: rows {rows}")
    fractional = boxes != np.round(boxes)
    if fractional.any():
        rows = _bad_rows(fractional)
        raise CaseError(name, f"boxes must hold whole pixel coordinates: rows {rows}")

    half = ncols // 2
    mins, maxs = boxes[:, :half], boxes[:, half:]
    if (mins > maxs).any():
        rows = _bad_rows(mins > maxs)
        raise CaseError(name, f"boxes have a min above its max ({layout}): rows {rows}")
    # Boxes are (x, y[, z]) while the array axes are ([D,] H, W).
    sizes = np.array(spatial[::-1] if is_3d else (spatial[1], spatial[0]), dtype=np.float64)
    outside = (mins > sizes - 1) | (maxs < 0)
    if outside.any():
        rows = _bad_rows(outside)
        raise CaseError(name, f"boxes lie outside the image of shape {spatial}: rows {rows}")
    overshoot = (mins < -BOX_OVERSHOOT_PX) | (maxs > sizes - 1 + BOX_OVERSHOOT_PX)
    if overshoot.any():
        raise CaseError(
            name,
            f"boxes extend more than {BOX_OVERSHOOT_PX} px past the image of shape {spatial}: "
            f"rows {_bad_rows(overshoot)}",
        )
    clipped = np.concatenate([np.maximum(mins, 0), np.minimum(maxs, sizes - 1)], axis=1)
    return clipped.astype(np.int64)


def _check_spacing(name: str, raw: np.ndarray) -> tuple[float, float, float]:
    if raw.dtype.kind not in "iuf" or raw.size != 3:
        raise CaseError(name, f"spacing must be 3 numbers, got {raw.dtype} of shape {raw.shape}")
    values = raw.astype(np.float64).ravel()
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise CaseError(name, f"spacing must be positive and finite, got {values.tolist()}")
    return (float(values[0]), float(values[1]), float(values[2]))


def _as_uint16_labels(name: str, segs: np.ndarray) -> np.ndarray:
    if segs.dtype.kind not in "iub":
        raise ValueError(f"{name}: segs must be an integer label map, got {segs.dtype}")
    if segs.size and (segs.min() < 0 or segs.max() > MAX_LABEL):
        raise ValueError(
            f"{name}: labels must lie in 0..{MAX_LABEL} to fit uint16, "
            f"got {segs.min()}..{segs.max()}"
        )
    return segs.astype(np.uint16, copy=False)


def _bad_rows(flags: np.ndarray) -> list[int]:
    """Row indices (0-based) where any flag is set, for error messages."""
    return np.flatnonzero(flags.reshape(len(flags), -1).any(axis=1)).tolist()
