"""Real scans for the converter's tests, written in every supported format with a scanner-like geometry.

The MR volume is nilearn's MNI152 T1 template with a label image of the left and
right cerebral tissue (grey or white matter of the template's own tissue maps, on
the same grid). It is subsampled (to 1 x 2 x 3 mm, x, y, z, for the geometry tests) and given a
non-zero origin and a flipped direction, so that axis order, spacing order and geometry
mistakes cannot cancel out. The 2D images are stardist's nuclei (grey, with their
instance mask) and its H&E histology picture (RGB).
"""

from __future__ import annotations

import io
import locale
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import tifffile
from PIL import Image

from demo.sources import read_nifti
from demo.wheels import NILEARN, STARDIST, WheelDownloadError, default_cache_dir, fetch_wheel, read_member

ORIGIN = (12.5, -40.25, 30.75)
# Directions in ITK's LPS world. The template's voxels run to the right, the front and
# the top (RAS): kept as they are, that is x and y flipped; with the rows reversed
# (the front at the top, as scanners show axial slices) only x is flipped. A DICOM
# series can hold only the first: its third axis is the cross product of the first two.
X_FLIPPED = (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
XY_FLIPPED = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
ANISOTROPIC = (1, 2, 3)  # steps through the 1 mm template along x, y, z: the spacing in mm
SCANNER_LIKE = (1, 1, 3)  # thick axial slices, square pixels
LEFT_LABEL, RIGHT_LABEL = 3, 8  # source label values that are not 1..N
TISSUE_THRESHOLD = 127


@dataclass(frozen=True)
class Volume:
    """A real scan and its label image, as SimpleITK images on one grid."""

    image: sitk.Image
    labels: sitk.Image


def wheel(which: object) -> Path:
    """A pinned wheel from the demo cache; the test is skipped where it cannot be fetched."""
    try:
        return fetch_wheel(which, default_cache_dir())  # type: ignore[arg-type]
    except WheelDownloadError as err:
        pytest.skip(f"real data unavailable: {err}")


def mni_volume(direction: tuple[float, ...] = X_FLIPPED, steps: tuple[int, int, int] = ANISOTROPIC,
               z_range: slice = slice(None)) -> Volume:
    """The MNI T1 template as int16, every `steps` (x, y, z) voxel, labels LEFT_LABEL and RIGHT_LABEL.

    `direction` is X_FLIPPED or XY_FLIPPED; `z_range` picks slices of the subsampled volume.
    """
    nilearn = wheel(NILEARN)
    t1, affine = read_nifti(nilearn, "t1")
    tissue = (read_nifti(nilearn, "gm")[0] > TISSUE_THRESHOLD) | (read_nifti(nilearn, "wm")[0] > TISSUE_THRESHOLD)
    midline = int(round(-affine[0, 3] / affine[0, 0]))  # the symmetric template's world x = 0
    left = np.arange(t1.shape[0])[:, None, None] < midline
    labels = np.where(tissue & left, LEFT_LABEL, np.where(tissue, RIGHT_LABEL, 0)).astype(np.uint8)

    def on_grid(array: np.ndarray, dtype: type) -> sitk.Image:
        rows = -1 if direction == X_FLIPPED else 1
        zyx = array.transpose(2, 1, 0)[:: steps[2], :: rows * steps[1], :: steps[0]][z_range]
        image = sitk.GetImageFromArray(np.ascontiguousarray(zyx).astype(dtype))
        image.SetSpacing(tuple(float(step) for step in steps))
        image.SetOrigin(ORIGIN)
        image.SetDirection(direction)
        return image

    return Volume(on_grid(t1, np.int16), on_grid(labels, np.uint8))


@contextmanager
def kept_locale() -> Iterator[None]:
    """Restore the C locale after the block: GDCM's DICOM writer sets it to "C", and Python then reads text as ASCII."""
    saved = locale.setlocale(locale.LC_ALL)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def write_dicom(image: sitk.Image, path: Path) -> None:
    """Write one DICOM file with SimpleITK, the locale kept."""
    with kept_locale():
        sitk.WriteImage(image, str(path))


def write_dicom_series(image: sitk.Image, folder: Path, uid: str, modality: str = "MR") -> list[Path]:
    """Write a volume as a DICOM series (one file per slice) with the tags that place each slice in space."""
    with kept_locale():
        return _write_series(image, folder, uid, modality)


def _write_series(image: sitk.Image, folder: Path, uid: str, modality: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    direction = image.GetDirection()
    orientation = "\\".join(f"{v:.10g}" for v in (direction[0], direction[3], direction[6],
                                                   direction[1], direction[4], direction[7]))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    paths = []
    for k in range(image.GetDepth()):
        piece = image[:, :, k]
        tags = {
            "0008|0060": modality, "0020|000e": uid, "0020|000d": uid + ".0", "0020|0037": orientation,
            "0020|0032": "\\".join(f"{v:.10g}" for v in image.TransformIndexToPhysicalPoint((0, 0, k))),
            "0020|0013": str(k + 1), "0018|0050": f"{image.GetSpacing()[2]:g}", "0008|0008": "DERIVED\\SECONDARY",
        }
        for tag, value in tags.items():
            piece.SetMetaData(tag, value)
        path = folder / f"{uid.rsplit('.', 1)[-1]}_{k:03d}.dcm"
        writer.SetFileName(str(path))
        writer.Execute(piece)
        paths.append(path)
    return paths


def nuclei_2d() -> tuple[np.ndarray, np.ndarray]:
    """stardist's 2D nuclei image (uint16) and its instance mask."""
    stardist = wheel(STARDIST)
    return tuple(tifffile.imread(io.BytesIO(read_member(stardist, f"stardist/data/images/{name}")))
                 for name in ("img2d.tif", "mask2d.tif"))  # type: ignore[return-value]


def nuclei_3d_mask() -> np.ndarray:
    """stardist's 3D nuclei instance mask (D, H, W)."""
    raw = read_member(wheel(STARDIST), "stardist/data/images/mask3d.tif")
    return tifffile.imread(io.BytesIO(raw))


def histology_rgb() -> np.ndarray:
    """stardist's H&E histology picture, uint8 RGB (H, W, 3)."""
    raw = read_member(wheel(STARDIST), "stardist/data/images/histo.jpg")
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))
