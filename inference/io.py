"""Input cases and output label maps: validate what a case holds, write `segs` atomically.

Names, discovery and safe npz reading are the shared contract in `casefiles`; this
module adds what inference needs on top and knows nothing about models.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from casefiles import CaseError, array_headers, is_3d, load_arrays

MAX_LABEL = int(np.iinfo(np.uint16).max)
# Real boxes often end one pixel past the image (an exclusive max written as
# inclusive) or carry a few pixels of jitter: such overshoots are clipped quietly;
# boxes further out are clipped too, with a warning.
QUIET_CLIP_PX = 5
# The scorer reads the output folder on the host as another user than the
# container's root; mkstemp creates files 0600, which it could not read.
OUTPUT_FILE_MODE = 0o644
# Memory a case needs besides imgs and its label map: the slice-embedding cache's
# budget (inference.volume) and one slice's working arrays.
WORKING_MEMORY = 384 * 2**20
# Box numbers listed in one warning or error before the rest are only counted.
LISTED_BOXES = 10


@dataclass(frozen=True)
class Case:
    """One validated input case: the boxes to segment, each with its label (its 1-based row in the file)."""

    name: str
    image: np.ndarray
    boxes: np.ndarray
    spacing: tuple[float, float, float] | None
    labels: np.ndarray | None = None
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.labels is None:  # every box kept: box k is label k
            object.__setattr__(self, "labels", np.arange(1, len(self.boxes) + 1, dtype=np.int64))

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
    volume = is_3d(name)
    if memory_available is not None:
        check_memory(name, array_headers(path), volume, memory_available)
    arrays = load_arrays(path, ("imgs", "boxes"), optional=("spacing",))
    notes: list[str] = []
    image = _check_image(name, arrays["imgs"], volume, notes)
    spatial = image.shape if volume else image.shape[:2]
    boxes, labels = _check_boxes(name, arrays["boxes"], spatial, volume, notes)
    spacing = _check_spacing(arrays.get("spacing"), notes)
    return Case(name=name, image=image, boxes=boxes, spacing=spacing, labels=labels, warnings=tuple(notes))


def case_memory(shape: tuple[int, ...], dtype: np.dtype, volume: bool) -> int:
    """Bytes a case holds while it is segmented: imgs as stored, its uint8 copy if converted, the uint16 label map."""
    voxels = math.prod(shape)
    spatial = math.prod(shape if volume else shape[:2])
    converted = 0 if dtype == np.uint8 else voxels
    return voxels * dtype.itemsize + converted + 2 * spatial


def check_memory(
    name: str, headers: dict[str, tuple[tuple[int, ...], np.dtype]], volume: bool, available: int
) -> None:
    """CaseError if imgs, its label map, the boxes and `WORKING_MEMORY` would not fit in `available` bytes."""
    if "imgs" not in headers:
        return  # load_arrays names what is missing or unreadable
    shape, dtype = headers["imgs"]
    box_shape, box_dtype = headers.get("boxes", ((0,), np.dtype(np.float64)))
    # The boxes as stored and their float64 working copies (a huge box array inflates like a huge image).
    boxes = math.prod(box_shape) * (box_dtype.itemsize + 4 * 8)
    need = case_memory(shape, dtype, volume) + boxes + WORKING_MEMORY
    if need > available:
        raise CaseError(
            name,
            f"too large for the memory given: imgs {shape} {dtype}, its label map and {box_shape[0]:,} boxes need "
            f"about {need / 2**30:.1f} GiB, {max(available, 0) / 2**30:.1f} GiB available",
        )


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


def prepare_output_dir(output_dir: Path, input_dir: Path) -> Path:
    """Create the output folder if missing and prove it writable; OSError saying why not, before any work.

    The input folder itself is refused: outputs carry the inputs' names and would replace them.
    """
    output_dir = Path(output_dir)
    if output_dir.resolve() == Path(input_dir).resolve():
        raise OSError(f"the output folder {output_dir} is the input folder: outputs would replace the cases")
    if output_dir.exists() and not output_dir.is_dir():
        raise OSError(f"the output folder {output_dir} exists and is not a folder")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=output_dir, prefix=".write-test.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OSError(f"the output folder {output_dir} is not writable: {err.strerror or err}") from err
    return output_dir


def complete_output(case_path: Path, output_dir: Path) -> bool:
    """Whether `output_dir` holds a readable output for the case: integer `segs` of the case's spatial shape.

    Only the npz headers are read. Outputs are written atomically, so an output
    with the right header was written to the end.
    """
    case_path = Path(case_path)
    output = Path(output_dir) / case_path.name
    if not output.is_file():
        return False
    try:
        segs = array_headers(output).get("segs")
        imgs = array_headers(case_path).get("imgs")
    except CaseError:
        return False
    if segs is None or imgs is None:
        return False
    shape = imgs[0] if is_3d(case_path.name) else imgs[0][:2]
    return segs[0] == shape and segs[1].kind in "iu"


def _check_image(name: str, image: np.ndarray, volume: bool, notes: list[str]) -> np.ndarray:
    """The image as uint8: (D, H, W) for 3D, (H, W, 3) or grey (H, W) for 2D."""
    if 0 in image.shape:
        raise CaseError(name, f"imgs is empty, shape {image.shape}")
    if volume and image.ndim != 3:
        raise CaseError(name, f"3D case: imgs must be (D, H, W), got shape {image.shape}")
    if not volume:
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
    name: str, raw: np.ndarray, spatial: tuple[int, ...], volume: bool, notes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """The boxes to segment, clipped to the image, and their labels (1-based rows); others skipped with a note."""
    ncols = 6 if volume else 4
    layout = "x_min,y_min,z_min,x_max,y_max,z_max" if volume else "x_min,y_min,x_max,y_max"
    if raw.dtype.kind not in "iuf":
        raise CaseError(name, f"boxes must be integer or float numbers, got {raw.dtype}")
    if raw.size == 0:
        notes.append("no boxes: the label map is all background")
        return np.zeros((0, ncols), dtype=np.int64), np.zeros(0, dtype=np.int64)
    if raw.ndim != 2 or raw.shape[1] != ncols:
        other = 4 if volume else 6
        hint = f" ({other} columns are {'2D' if volume else '3D'} boxes: is the file named for its kind?)" if (
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
    sizes = np.array(spatial[::-1] if volume else (spatial[1], spatial[0]), dtype=np.float64)
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


def _as_uint16_labels(name: str, segs: np.ndarray) -> np.ndarray:
    if segs.dtype.kind not in "iub":
        raise ValueError(f"{name}: segs must be an integer label map, got {segs.dtype}")
    if segs.size and (segs.min() < 0 or segs.max() > MAX_LABEL):
        raise ValueError(
            f"{name}: labels must lie in 0..{MAX_LABEL} to fit uint16, "
            f"got {segs.min()}..{segs.max()}"
        )
    return segs.astype(np.uint16, copy=False)
