"""Write a case (imgs, gts and sidecar) and label images, each file atomically and a case only when all is ready."""

from __future__ import annotations

import os
import tempfile
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from common.atomic import atomic_path
from convert.case import Case
from convert.errors import ConvertError
from convert.readers import itk_message

# Single-file formats only: a two-file .mhd/.nhdr header names its data file, which a rename would break.
IMAGE_OUTPUTS = (".nii.gz", ".nii", ".nrrd", ".mha", ".tif", ".tiff", ".png")


def case_paths(out_dir: Path, name: str) -> dict[str, Path]:
    """Where a case goes: `imgs/<name>.npz`, `gts/<name>.npz` and the sidecar `<name>.json`."""
    out_dir = Path(out_dir)
    return {"imgs": out_dir / "imgs" / f"{name}.npz", "gts": out_dir / "gts" / f"{name}.npz",
            "sidecar": out_dir / f"{name}.json"}


def write_case(case: Case, out_dir: Path) -> dict[str, Path]:
    """Write the case's files; each appears complete, and an error while writing leaves none of them new."""
    paths = case_paths(out_dir, case.name)
    spacing = {} if case.spacing is None else {"spacing": np.array(case.spacing, dtype=np.float64)}
    with ExitStack() as stack:
        # Every file is written under a temporary name first; the renames run as the stack closes.
        with open(stack.enter_context(atomic_path(paths["imgs"])), "wb") as handle:
            np.savez_compressed(handle, imgs=case.imgs, boxes=case.boxes, **spacing)
        if case.gts is not None:
            with open(stack.enter_context(atomic_path(paths["gts"])), "wb") as handle:
                np.savez_compressed(handle, gts=case.gts, **spacing)
        stack.enter_context(atomic_path(paths["sidecar"])).write_text(case.sidecar.to_json())
    if case.gts is None:
        del paths["gts"]
    return paths


def check_image_output(path: Path) -> None:
    """ConvertError unless `path` names a single-file image format that can be written."""
    if not str(path).lower().endswith(IMAGE_OUTPUTS):
        raise ConvertError(path, f"cannot write this format; write one of {', '.join(IMAGE_OUTPUTS)}")


def write_image(image: sitk.Image, path: Path) -> Path:
    """Write a SimpleITK image (compressed where the format can) atomically; the format follows the name."""
    path = Path(path)
    check_image_output(path)
    try:
        with atomic_path(path) as tmp, tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as staging:
            # ITK picks the format and the compression from the name, so write under the real name, then move.
            staged = Path(staging) / path.name
            sitk.WriteImage(image, str(staged), useCompression=True)
            os.replace(staged, tmp)
    except RuntimeError as err:
        raise ConvertError(path, f"cannot write: {itk_message(err)}") from err
    return path
