"""A segmentation back on its source's grid: crop undone, geometry of the source, optionally its label values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from casefiles import CaseError, load_arrays
from convert.errors import ConvertError
from convert.geometry import Geometry
from convert.sidecar import Sidecar, read_sidecar


def find_sidecar(segs_path: Path, given: Path | None) -> Path | None:
    """`--sidecar`, else `<name>.json` beside the segs file or in its parent folder (the case folder), else None."""
    if given is not None:
        return Path(given)
    name = Path(segs_path).stem + ".json"
    for folder in (Path(segs_path).parent, Path(segs_path).parent.parent):
        if (folder / name).is_file():
            return folder / name
    return None


def read_segs(path: Path) -> np.ndarray:
    """The `segs` label map of a segmentation npz (read without unpickling)."""
    try:
        segs = load_arrays(Path(path), ["segs"])["segs"]
    except CaseError as err:
        raise ConvertError(path, err.problem) from err
    if segs.dtype.kind not in "iu" or (segs.size and segs.min() < 0):
        raise ConvertError(path, f"segs must hold labels 0..N, got {segs.dtype}")
    return segs


def label_image(segs: np.ndarray, like: Geometry, sidecar: Sidecar | None, source_labels: bool,
                segs_path: Path) -> sitk.Image:
    """The label image on the `like` grid: crop undone, labels 1..N or (`source_labels`) the source's values."""
    full_shape = _case_grid_shape(like)
    start, stop = (sidecar.crop_start, sidecar.crop_stop) if sidecar else ((0,) * len(full_shape), full_shape)
    expected = tuple(b - a for a, b in zip(start, stop))
    if segs.shape != expected:
        hint = "" if sidecar else "; give the case's sidecar with --sidecar"
        raise ConvertError(segs_path, f"segs has shape {segs.shape}, the case has {expected}{hint}")
    if source_labels:
        if sidecar is None or any("source_label" not in entry for entry in sidecar.objects):
            raise ConvertError(segs_path, "--source-labels needs the sidecar of a case made from a label image")
        lookup = np.array([0] + [entry["source_label"] for entry in sidecar.objects], dtype=np.int64)
        if segs.max(initial=0) >= len(lookup):
            raise ConvertError(segs_path, f"label {int(segs.max())} has no object in the sidecar ({len(lookup) - 1})")
        segs = lookup[segs]
    dtype = np.uint16 if segs.max(initial=0) <= np.iinfo(np.uint16).max else np.uint32
    full = np.zeros(full_shape, dtype=dtype)
    full[tuple(slice(a, b) for a, b in zip(start, stop))] = segs
    return like.stamp(sitk.GetImageFromArray(full.reshape(like.array_shape)))


def restore_file(segs_path: Path, like: Geometry, like_path: Path, sidecar_path: Path | None,
                 source_labels: bool) -> sitk.Image:
    """The label image of a segs file on the grid of its source `like` (read from `like_path`)."""
    sidecar = None if sidecar_path is None else read_sidecar(sidecar_path)
    if sidecar is not None and not sidecar.geometry.matches(like):
        raise ConvertError(like_path, f"not the source of this case: its grid ({like.describe()}) differs from "
                                      f"the one the sidecar {sidecar_path} records ({sidecar.geometry.describe()})")
    return label_image(read_segs(segs_path), like, sidecar, source_labels, segs_path)


def _case_grid_shape(like: Geometry) -> tuple[int, ...]:
    """The array shape of the source as a case holds it: a one-slice volume as a 2D (H, W) picture."""
    shape = like.array_shape
    return shape[1:] if len(shape) == 3 and shape[0] == 1 else shape
