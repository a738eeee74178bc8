"""The output folder: `segs` files written atomically, the folder checked before work, complete outputs found."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from casefiles import CaseError, array_headers, is_3d
from common.atomic import atomic_file
from inference.labelmap import as_uint16_labels


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
    label_map = as_uint16_labels(name, segs)
    want_ndim = 3 if is_3d(name) else 2
    if label_map.ndim != want_ndim:
        raise ValueError(f"{name}: segs must have {want_ndim} dimensions, got shape {segs.shape}")
    if expected_shape is not None and label_map.shape != tuple(expected_shape):
        want = tuple(expected_shape)
        raise ValueError(f"{name}: segs shape {label_map.shape} != case shape {want}")

    final = Path(output_dir) / name
    with atomic_file(final) as handle:
        np.savez_compressed(handle, segs=label_map)
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
