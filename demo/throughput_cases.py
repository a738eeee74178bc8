"""A data set of many small real cases, 2D and 3D, for measuring throughput over a whole folder.

All come from the demo's real images (the pinned stardist and nilearn wheels), each
with the boxes of its real objects:
- 2D Microscope: crops of the nuclei image (256 and 384 pixels wide) at spread offsets;
- 2D MR: axial slices of the brain slab, one box per hemisphere, grey repeated to RGB;
- 3D MR: sub-slabs of the brain slab, 8 to 20 slices deep, at two offsets each;
- 3D Microscope: the nuclei volume with every fourth nucleus, and its upper and lower halves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from demo.build import write_case
from demo.sources import DemoCase, brain_mr, nuclei_2d, nuclei_3d, relabel
from demo.wheels import NILEARN, STARDIST, default_cache_dir, fetch_wheel

NUCLEI_CROPS = [(256, top, left) for top in (0, 128, 256) for left in (0, 128, 256)] + [
    (384, 0, 0), (384, 64, 128), (384, 128, 64)]
MR_SLICE_STEP = 3
MR_SLABS = [(depth, offset) for depth in (8, 10, 12, 14, 16, 20) for offset in (0, 32 - depth)]
NUCLEI_SUBSETS = 4


def with_labels(case: DemoCase, name: str, image: np.ndarray, gts: np.ndarray) -> DemoCase | None:
    """A case of `image` with the objects of `gts` numbered 1..N again; None where no object is left."""
    labels = relabel(gts)
    return DemoCase(name, image, labels, case.spacing) if labels.any() else None


def throughput_cases(cache_dir: Path | None = None) -> list[DemoCase]:
    """The cases, named `<kind>_<modality>_1NNN.npz`: 23 2D and 18 3D."""
    cache_dir = cache_dir or default_cache_dir()
    stardist, nilearn = fetch_wheel(STARDIST, cache_dir), fetch_wheel(NILEARN, cache_dir)
    flat, volume, brain = nuclei_2d(stardist, ""), nuclei_3d(stardist, ""), brain_mr(nilearn, "")
    cases: list[DemoCase | None] = []
    for number, (side, top, left) in enumerate(NUCLEI_CROPS, 1001):
        crop = np.s_[top : top + side, left : left + side]
        cases.append(with_labels(flat, f"2DBox_Microscope_{number}.npz", flat.image[crop], flat.gts[crop]))
    for number, z in enumerate(range(0, len(brain.image), MR_SLICE_STEP), 1101):
        rgb = np.repeat(brain.image[z][..., None], 3, axis=2)
        cases.append(DemoCase(f"2DBox_MR_{number}.npz", rgb, relabel(brain.gts[z]), None))
    for number, (depth, offset) in enumerate(MR_SLABS, 1201):
        slab = np.s_[offset : offset + depth]
        cases.append(with_labels(brain, f"3DBox_MR_{number}.npz", brain.image[slab], brain.gts[slab]))
    for number, first in enumerate(range(NUCLEI_SUBSETS), 1301):
        every_fourth = np.isin(volume.gts, np.arange(1 + first, volume.gts.max() + 1, NUCLEI_SUBSETS))
        cases.append(with_labels(volume, f"3DBox_Microscope_{number}.npz", volume.image,
                                 np.where(every_fourth, volume.gts, 0)))
    half = len(volume.image) // 2
    for number, part in enumerate((np.s_[:half], np.s_[half:]), 1301 + NUCLEI_SUBSETS):
        cases.append(with_labels(volume, f"3DBox_Microscope_{number}.npz", volume.image[part], volume.gts[part]))
    return [case for case in cases if case is not None]


def build_throughput_cases(out_dir: Path, cache_dir: Path | None = None) -> list[Path]:
    """Write `out_dir/inputs/*.npz` and `out_dir/gts/*.npz`; return the input files."""
    return [write_case(Path(out_dir), case) for case in throughput_cases(cache_dir)]
