"""Typical challenge cases from real images (the demo's pinned wheels): one or a few objects each.

Most challenge cases hold one object or a few, where every slice is encoded once by
the baseline too, so the encoder is the whole cost. These cases measure that:

- 3D MR, one object: the posterior fossa of the MNI152 T1 brain, 2 mm axial slices;
- 3D microscopy, one object: one nucleus of stardist's 3D nuclei volume;
- 3D MR, four objects: the posterior fossa and the cerebrum above the ventricles, each split at the midline;
- 2D microscopy, one box: the largest nucleus of the 2018 Data Science Bowl image;
- 2D MR, one box: the left hemisphere on an axial slice through the ventricles.

`atlas_case` is the whole brain at the standard 181 x 217 x 181 MNI grid with twelve
structure boxes: the memory benchmark's atlas-style case.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.label_boxes import label_boxes
from demo.build import write_case
from demo.large_cases import LargeCase, brain_structures
from demo.sources import DemoCase, mask_bounds, nuclei_2d, nuclei_3d, relabel, window_mr_uint8
from demo.wheels import NILEARN, STARDIST, default_cache_dir, fetch_wheel

# Axial slices 2 mm apart, as many clinical MR series are (and as the demo's slab).
SLICE_STEP = 2
MARGIN = 4
# The MNI 2009a grid (197 x 233 x 189, 1 mm) holds the standard 181 x 217 x 181 grid
# with 8 voxels more on each side in x and y, and 4 more at each end in z; (D, H, W) here.
ATLAS_CROP = np.s_[4:185, 8:225, 8:189]


@dataclass(frozen=True)
class TypicalCase:
    """A case of the typical mix and the class it counts in (one object or a few)."""

    case: DemoCase
    objects: str  # "one" or "few"


def brain_regions(nilearn_wheel: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The MNI152 T1 (D, H, W) and named structure masks, each hemisphere apart (left: lower x, as RAS stores it)."""
    t1, (tissue, left, right, white, fossa, superior) = brain_structures(nilearn_wheel)
    grey = tissue & ~white
    frontal = np.zeros_like(tissue)
    # The front of the head is at the top (low row index); the frontal pole's third of the brain's rows.
    rows = np.flatnonzero(tissue.any(axis=(0, 2)))
    frontal[:, : rows[0] + (rows[-1] - rows[0]) // 3] = True
    frontal &= tissue
    regions = {"tissue": tissue, "white": white, "grey": grey, "fossa": fossa, "superior": superior,
               "frontal": frontal}
    return t1, {f"{name}_{side}": mask & half for name, mask in regions.items()
                for side, half in (("left", left), ("right", right))}


def label_map(masks: list[np.ndarray]) -> np.ndarray:
    """Masks painted as labels 1..N in order (a later mask wins where they overlap)."""
    labels = np.zeros(masks[0].shape, dtype=np.uint16)
    for label, mask in enumerate(masks, 1):
        labels[mask] = label
    return labels


def brain_slab(t1: np.ndarray, masks: list[np.ndarray], name: str) -> DemoCase:
    """The brain's 2 mm axial slab around `masks`, cropped to the head, as a case."""
    (z0, y0, x0), (z1, y1, x1) = mask_bounds(t1 > 0, MARGIN)
    labels = label_map(masks)
    (lz, _, _), (hz, _, _) = mask_bounds(labels > 0, SLICE_STEP)
    slab = np.s_[max(lz, z0) : min(hz, z1) : SLICE_STEP, y0:y1, x0:x1]
    return DemoCase(name, window_mr_uint8(t1[slab]), relabel(labels[slab]), (float(SLICE_STEP), 1.0, 1.0))


def brain_slice(t1: np.ndarray, mask: np.ndarray, name: str) -> DemoCase:
    """The axial slice where `mask` is widest, grey repeated to RGB, with `mask` as its one object."""
    z = int(np.argmax(mask.sum(axis=(1, 2))))
    grey = window_mr_uint8(t1[z])
    return DemoCase(name, np.repeat(grey[..., None], 3, axis=2), mask[z].astype(np.uint16), None)


def largest_object(case: DemoCase, name: str) -> DemoCase:
    """`case` with only its largest ground-truth object, as label 1."""
    sizes = np.bincount(case.gts.ravel())
    sizes[0] = 0
    return DemoCase(name, case.image, (case.gts == np.argmax(sizes)).astype(np.uint16), case.spacing)


def typical_cases(cache_dir: Path | None = None) -> list[TypicalCase]:
    """The typical mix, from the demo's pinned wheels."""
    cache_dir = cache_dir or default_cache_dir()
    stardist, nilearn = fetch_wheel(STARDIST, cache_dir), fetch_wheel(NILEARN, cache_dir)
    t1, regions = brain_regions(nilearn)
    few = [regions[f"{name}_{side}"] for name in ("fossa", "superior") for side in ("left", "right")]
    return [
        TypicalCase(brain_slab(t1, [regions["fossa_left"] | regions["fossa_right"]], "3DBox_MR_1001.npz"), "one"),
        TypicalCase(largest_object(nuclei_3d(stardist, ""), "3DBox_Microscope_1002.npz"), "one"),
        TypicalCase(brain_slab(t1, few, "3DBox_MR_1003.npz"), "few"),
        TypicalCase(largest_object(nuclei_2d(stardist, ""), "2DBox_Microscope_1004.npz"), "one"),
        TypicalCase(brain_slice(t1, regions["tissue_left"], "2DBox_MR_1005.npz"), "one"),
    ]


def atlas_case(cache_dir: Path | None = None, name: str = "3DBox_MR_1006.npz") -> LargeCase:
    """The whole brain on the 181 x 217 x 181 MNI grid (1 mm) with the boxes of twelve structures (six regions,
    two sides; they overlap, as the tissue holds the grey and the white matter). On each side the tissue's box is
    the grey matter's, so the pipeline segments ten distinct boxes (a repeated box is painted over)."""
    t1, regions = brain_regions(fetch_wheel(NILEARN, cache_dir or default_cache_dir()))
    boxes = np.concatenate([label_boxes(mask[ATLAS_CROP].astype(np.uint16)) for mask in regions.values()])
    return LargeCase(name, window_mr_uint8(t1[ATLAS_CROP]), boxes, (1.0, 1.0, 1.0))


def write_typical(out_dir: Path, cache_dir: Path | None = None) -> dict[str, str]:
    """Write the typical mix as `out_dir/inputs` and `out_dir/gts`; return case name -> object class."""
    classes = {}
    for typical in typical_cases(cache_dir):
        write_case(out_dir, typical.case)
        classes[typical.case.name] = typical.objects
    return classes
