"""Reading one input case: what the npz holds, validated and repaired where that needs no guessing.

Names, discovery and safe npz reading are the shared contract in `casefiles`; this
module adds what inference needs on top and knows nothing about models.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from casefiles import CaseError, array_headers, is_3d, load_arrays
from inference.admission import check_memory
from inference.labelmap import MAX_LABEL

# Real boxes often end one pixel past the image (an exclusive max written as
# inclusive) or carry a few pixels of jitter: such overshoots are clipped quietly;
# boxes further out are clipped too, with a warning.
QUIET_CLIP_PX = 5
# Box numbers listed in one warning or error before the rest are only counted.
LISTED_BOXES = 10


@dataclass(frozen=True)
class Case:
    """One validated input case: the boxes to segment, each with the label it paints (its 1-based row in the file)."""

    name: str
    image: np.ndarray
    boxes: np.ndarray
    spacing: tuple[float, float, float] | None
    box_labels: np.ndarray | None = None
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.box_labels is None:  # every box kept: box k is label k
            object.__setattr__(self, "box_labels", np.arange(1, len(self.boxes) + 1, dtype=np.int64))

    @property
    def is_3d(self) -> bool:
        """Whether the case is a volume (name starts with ``3D``)."""
        return is_3d(self.name)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Shape of the label map: (H, W) for 2D, (D, H, W) for 3D."""
        return tuple(self.image.shape) if self.is_3d else tuple(self.image.shape[:2])


def load_case(path: Path, memory_available: int | None = None) -> Case:
    """Read and validate one case file; raise CaseError naming the file and the problem.

    What can be repaired without guessing is repaired and reported in `Case.warnings`:
    boxes partly outside the image are clipped, boxes that cannot be segmented
    (wholly outside, inverted, NaN) are skipped, non-uint8 images holding whole
    values in 0..255 are converted, a grey 2D image is read as grey, unusable
    spacing is ignored. With `memory_available` (bytes), a case whose arrays would
    not fit is refused before anything is decompressed.
    """
    path = Path(path)
    name = path.name
    three_d = is_3d(name)
    if memory_available is not None:
        check_memory(name, array_headers(path), three_d, memory_available)
    arrays = load_arrays(path, ("imgs", "boxes"), optional=("spacing",))
    notes: list[str] = []
    image = _check_image(name, arrays["imgs"], three_d, notes)
    spatial = image.shape if three_d else image.shape[:2]
    boxes, box_labels = _check_boxes(name, arrays["boxes"], spatial, three_d, notes)
    spacing = _check_spacing(arrays.get("spacing"), notes)
    return Case(name=name, image=image, boxes=boxes, spacing=spacing, box_labels=box_labels, warnings=tuple(notes))


def _check_image(name: str, image: np.ndarray, three_d: bool, notes: list[str]) -> np.ndarray:
    """The image as uint8: (D, H, W) for 3D, (H, W, 3) or grey (H, W) for 2D."""
    if 0 in image.shape:
        raise CaseError(name, f"imgs is empty, shape {image.shape}")
    if three_d and image.ndim != 3:
        raise CaseError(name, f"3D case: imgs must be (D, H, W), got shape {image.shape}")
    if not three_d:
        if image.ndim == 3 and image.shape[2] == 1 or image.ndim == 2:
            notes.append(f"imgs is a grey image of shape {image.shape}: segmented as grey")
            image = image.reshape(image.shape[:2])
        elif image.ndim != 3 or image.shape[2] != 3:
            hint = " (a (D, H, W) volume is a 3D case: name it 3DBox_...)" if image.ndim == 3 and image.shape[2] > 4 else ""
            raise CaseError(name, f"2D case: imgs must be (H, W, 3), got shape {image.shape}{hint}")
    return _as_uint8(name, image, notes)


def _as_uint8(name: str, image: np.ndarray, notes: list[str]) -> np.ndarray:
    """uint8 as it is; other numbers only when every value is a whole number in 0..255 (lossless)."""
    if image.dtype == np.uint8:
        return image
    if image.dtype.kind not in "buif":
        raise CaseError(name, f"imgs must be uint8 (0..255), got {image.dtype}")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise CaseError(name, f"imgs must be uint8 (0..255), got {image.dtype} holding NaN or infinity")
    low, high = image.min(), image.max()
    whole = image.dtype.kind != "f" or not np.any(np.mod(image, 1))
    if low < 0 or high > 255 or not whole:
        raise CaseError(
            name,
            f"imgs must be uint8 (0..255), got {image.dtype} with values {low:g}..{high:g}"
            f"{'' if whole else ' (not whole numbers)'}: window it to 0..255 first",
        )
    notes.append(f"imgs is {image.dtype} with values {low:g}..{high:g}: read as uint8")
    return image.astype(np.uint8)


def _check_boxes(
    name: str, raw: np.ndarray, spatial: tuple[int, ...], three_d: bool, notes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """The boxes to segment, clipped to the image, and the labels they paint (1-based rows); others skipped with a note."""
    ncols = 6 if three_d else 4
    layout = "x_min,y_min,z_min,x_max,y_max,z_max" if three_d else "x_min,y_min,x_max,y_max"
    if raw.dtype.kind not in "iuf":
        raise CaseError(name, f"boxes must be integer or float numbers, got {raw.dtype}")
    if raw.size == 0:
        notes.append("no boxes: the label map is all background")
        return np.zeros((0, ncols), dtype=np.int64), np.zeros(0, dtype=np.int64)
    if raw.ndim != 2 or raw.shape[1] != ncols:
        other = 4 if three_d else 6
        hint = f" ({other} columns are {'2D' if three_d else '3D'} boxes: is the file named for its kind?)" if (
            raw.ndim == 2 and raw.shape[1] == other) else ""
        raise CaseError(name, f"boxes must be (N, {ncols}) as {layout}, got shape {raw.shape}{hint}")
    if len(raw) > MAX_LABEL:
        raise CaseError(name, f"{len(raw):,} boxes: at most {MAX_LABEL:,} objects fit a uint16 label map")

    # Checks run in float64: exact for every integer an image can index, and huge
    # or non-finite values fail a check instead of overflowing a cast.
    boxes = raw.astype(np.float64)
    keep = np.isfinite(boxes).all(axis=1)
    _note(notes, ~keep, "NaN or infinity: skipped")
    boxes[~keep] = 0
    _note(notes, keep & (boxes != np.round(boxes)).any(axis=1), "not whole pixels: rounded to the nearest pixel")
    boxes = np.round(boxes)

    half = ncols // 2
    mins, maxs = boxes[:, :half], boxes[:, half:]
    inverted = keep & (mins > maxs).any(axis=1)
    _note(notes, inverted, f"a min above its max ({layout}): skipped")
    keep &= ~inverted
    # Boxes are (x, y[, z]) while the array axes are ([D,] H, W).
    sizes = np.array(spatial[::-1] if three_d else (spatial[1], spatial[0]), dtype=np.float64)
    outside = keep & ((mins > sizes - 1) | (maxs < 0)).any(axis=1)
    _note(notes, outside, f"wholly outside the image of shape {spatial}: skipped")
    keep &= ~outside
    far = keep & ((mins < -QUIET_CLIP_PX) | (maxs > sizes - 1 + QUIET_CLIP_PX)).any(axis=1)
    _note(notes, far, f"more than {QUIET_CLIP_PX} px past the image of shape {spatial}: clipped to it")

    clipped = np.concatenate([np.maximum(mins, 0), np.minimum(maxs, sizes - 1)], axis=1).astype(np.int64)
    _note(notes, keep & _covered_by_a_later_copy(clipped, keep), "repeated by a later box, whose label covers it")
    return clipped[keep], np.flatnonzero(keep) + 1


def _covered_by_a_later_copy(boxes: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Flags of the kept boxes that a later kept box repeats exactly."""
    kept = np.flatnonzero(keep)
    if kept.size == 0:
        return np.zeros(len(boxes), dtype=bool)
    _, last = np.unique(boxes[kept][::-1], axis=0, return_index=True)
    flags = np.ones(len(boxes), dtype=bool)
    flags[~keep] = False
    flags[kept[len(kept) - 1 - last]] = False
    return flags


def _note(notes: list[str], flags: np.ndarray, what: str) -> None:
    """Add 'boxes 3, 7 (1-based): <what>' when any flag is set."""
    numbers = (np.flatnonzero(flags) + 1).tolist()
    if not numbers:
        return
    listed = ", ".join(map(str, numbers[:LISTED_BOXES]))
    more = f" and {len(numbers) - LISTED_BOXES} more" if len(numbers) > LISTED_BOXES else ""
    notes.append(f"{'box' if len(numbers) == 1 else 'boxes'} {listed}{more} (1-based): {what}")


def _check_spacing(raw: np.ndarray | None, notes: list[str]) -> tuple[float, float, float] | None:
    """The voxel spacing, or None when it is absent or unusable (inference does not need it)."""
    if raw is None:
        return None
    if raw.dtype.kind not in "iuf" or raw.size != 3:
        notes.append(f"spacing ignored (inference does not use it): must be 3 numbers, got {raw.dtype} of shape {raw.shape}")
        return None
    values = raw.astype(np.float64).ravel()
    if not (np.isfinite(values).all() and (values > 0).all()):
        notes.append(f"spacing ignored (inference does not use it): must be positive and finite, got {values.tolist()}")
        return None
    return (float(values[0]), float(values[1]), float(values[2]))
