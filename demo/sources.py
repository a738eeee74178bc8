"""Real images and label maps from the pinned wheels, converted to the challenge's conventions."""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import tifffile

from demo.wheels import read_member

_STARDIST_IMAGES = "stardist/data/images"
_MNI = "nilearn/datasets/data/mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"
# stardist ships its 3D volume without a voxel size. Its nuclei are about half
# as deep in z (median 7 voxels) as they are wide in y and x (15, 14), so for
# roughly round nuclei a z step twice the in-plane step is assumed.
NUCLEI_3D_SPACING = (2.0, 1.0, 1.0)
# The MNI maps store probabilities as 0..255; above half counts as tissue.
TISSUE_THRESHOLD = 127
# An axial slab of the brain: every second 1 mm slice, centred on the brain,
# keeps real anatomy while inference over it stays at a few seconds.
MR_SLICES = 32
MR_SLICE_STEP = 2
MR_MARGIN = 2


@dataclass(frozen=True)
class DemoCase:
    """An image in challenge form with its ground-truth label map (labels 1..N)."""

    name: str
    image: np.ndarray
    gts: np.ndarray  # the ground-truth label map, as the gts npz holds it
    spacing: tuple[float, float, float] | None


def nuclei_2d(stardist_wheel: Path, name: str) -> DemoCase:
    """2D fluorescence nuclei (2018 Data Science Bowl) as a grey image repeated to RGB."""
    image = _read_tiff(stardist_wheel, "img2d.tif")
    labels = _read_tiff(stardist_wheel, "mask2d.tif")
    grey = minmax_uint8(image)
    return DemoCase(name, np.repeat(grey[..., None], 3, axis=2), relabel(labels), None)


def nuclei_3d(stardist_wheel: Path, name: str) -> DemoCase:
    """3D nuclei volume (stardist's synthetic test volume), (D, H, W)."""
    image = _read_tiff(stardist_wheel, "img3d.tif")
    labels = _read_tiff(stardist_wheel, "mask3d.tif")
    return DemoCase(name, minmax_uint8(image), relabel(labels), NUCLEI_3D_SPACING)


def brain_mr(nilearn_wheel: Path, name: str) -> DemoCase:
    """Axial slab of the MNI152 2009a T1 template; labels: left and right cerebral tissue.

    Tissue is grey or white matter; each hemisphere is one compact object, the
    kind of structure a box prompt describes (grey matter alone is a thin ribbon
    whose box holds the whole hemisphere).
    """
    t1, affine = read_nifti(nilearn_wheel, "t1")
    grey = read_nifti(nilearn_wheel, "gm")[0] > TISSUE_THRESHOLD
    white = read_nifti(nilearn_wheel, "wm")[0] > TISSUE_THRESHOLD
    # The symmetric template puts the midline at world x = 0.
    midline = int(round(-affine[0, 3] / affine[0, 0]))
    left = np.arange(t1.shape[0])[:, None, None] < midline
    semantic = np.zeros(t1.shape, dtype=np.uint16)
    tissue = grey | white
    for label, mask in enumerate((tissue & left, tissue & ~left), 1):
        semantic[mask] = label

    # The template is RAS (x, y, z); the challenge stores (D, H, W) slices, so
    # go to (z, y, x) and flip y to put the front of the head at the top.
    image = ras_to_dhw(t1)
    semantic = ras_to_dhw(semantic)
    (z0, y0, x0), (z1, y1, x1) = mask_bounds(image > 0, MR_MARGIN)
    centre = (z0 + z1) // 2
    first = max(centre - MR_SLICES * MR_SLICE_STEP // 2, 0)
    slab = np.s_[first : first + MR_SLICES * MR_SLICE_STEP : MR_SLICE_STEP, y0:y1, x0:x1]
    spacing = (
        float(abs(affine[2, 2])) * MR_SLICE_STEP,
        float(abs(affine[1, 1])),
        float(abs(affine[0, 0])),
    )
    return DemoCase(name, window_mr_uint8(image[slab]), relabel(semantic[slab]), spacing)


def minmax_uint8(image: np.ndarray) -> np.ndarray:
    """Rescale intensities linearly so the minimum maps to 0 and the maximum to 255."""
    values = image.astype(np.float64)
    low, high = values.min(), values.max()
    scaled = (values - low) / max(high - low, 1e-8) * 255.0
    return np.round(scaled).astype(np.uint8)


def window_mr_uint8(image: np.ndarray) -> np.ndarray:
    """Clip to the 0.5..99.5 percentiles of the foreground, rescale to 0..255, keep 0 as 0."""
    values = image.astype(np.float64)
    foreground = values > 0
    low, high = np.percentile(values[foreground], (0.5, 99.5))
    scaled = (np.clip(values, low, high) - low) / max(high - low, 1e-8) * 255.0
    scaled[~foreground] = 0
    return np.round(scaled).astype(np.uint8)


def relabel(labels: np.ndarray) -> np.ndarray:
    """Map the distinct nonzero labels, in increasing order, to 1..N (uint16)."""
    values = np.unique(labels)
    values = values[values != 0]
    lookup = np.searchsorted(values, labels)
    out = (lookup + 1).astype(np.uint16)
    out[labels == 0] = 0
    return out


def _read_tiff(stardist_wheel: Path, filename: str) -> np.ndarray:
    raw = read_member(stardist_wheel, f"{_STARDIST_IMAGES}/{filename}")
    return tifffile.imread(io.BytesIO(raw))


def read_nifti(nilearn_wheel: Path, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """One MNI152 volume of the nilearn wheel ("t1", "gm" or "wm") and its affine."""
    raw = gzip.decompress(read_member(nilearn_wheel, _MNI.format(kind)))
    volume = nib.Nifti1Image.from_bytes(raw)
    return np.asarray(volume.dataobj), volume.affine


def ras_to_dhw(volume: np.ndarray) -> np.ndarray:
    """A RAS-ordered (x, y, z) volume as (D, H, W) slices: axial, anterior at the top."""
    return np.ascontiguousarray(volume.transpose(2, 1, 0)[:, ::-1, :])


def mask_bounds(mask: np.ndarray, margin: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Half-open bounding box of a mask, grown by ``margin`` and kept inside the array."""
    where = np.argwhere(mask)
    low = np.maximum(where.min(axis=0) - margin, 0)
    high = np.minimum(where.max(axis=0) + 1 + margin, mask.shape)
    return tuple(low.tolist()), tuple(high.tolist())
