"""One case scored with the organisers' conventions (compute_metrics.py).

- labels are 1..max(gts); labels in the prediction above max(gts) are ignored;
- a label absent from both masks has Dice NaN, which makes the case mean NaN;
- NSD (tolerance 2.0) is computed only when the case's Dice is > 0.2, else 0;
  a NaN Dice fails that test too, so its NSD is 0;
- 3D uses the given spacing paired with the array axes; 2D is scored as an
  (H, W, 1) volume with spacing (1, 1, 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage

from common.overlap import dice
from evaluation.metrics.surface import compute_surface_distances, surface_dice_at_tolerance, surfel_area_table

TOLERANCE = 2.0
NSD_MIN_DSC = 0.2
SPACING_2D = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Score:
    """Case Dice and NSD (means over labels) and the per-label values behind them."""

    dsc: float
    nsd: float
    label_dsc: tuple[float, ...]
    label_nsd: tuple[float, ...]


Box = tuple[slice, ...]


def _label_boxes(gts: np.ndarray, segs: np.ndarray, num_labels: int) -> list[Box | None]:
    """Per label 1..num_labels, the box around (gts == i) | (segs == i), None if both are empty."""
    # find_objects skips labels <= 0 and > max_label, the labels the organisers never compare.
    boxes_gt = ndimage.find_objects(gts, max_label=num_labels)
    boxes_seg = ndimage.find_objects(segs, max_label=num_labels)
    return [_union(a, b) for a, b in zip(boxes_gt, boxes_seg)]


def _union(a: Box | None, b: Box | None) -> Box | None:
    """Smallest box containing both boxes (either may be None)."""
    if a is None or b is None:
        return a if b is None else b
    return tuple(slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b))


def _label_dice(gts: np.ndarray, segs: np.ndarray, boxes: list[Box | None]) -> np.ndarray:
    """Dice of (gts == i, segs == i) per label; NaN where both are empty."""
    values = np.full(len(boxes), np.nan)
    for index, box in enumerate(boxes):
        if box is None:
            continue
        # Integer counts and one division, as the organisers' compute_dice_coefficient.
        values[index] = dice(gts[box] == index + 1, segs[box] == index + 1, both_empty=np.nan)
    return values


def _label_nsd(
    gts: np.ndarray,
    segs: np.ndarray,
    boxes: list[Box | None],
    spacing: Sequence[float],
    tolerance: float,
) -> np.ndarray:
    """Surface Dice at `tolerance` of (gts == i, segs == i) per label (3D arrays)."""
    area_table = surfel_area_table(spacing)
    values = np.zeros(len(boxes))
    for index, box in enumerate(boxes):
        if box is None:
            # Both masks empty: the organisers' formula gives 0 / (0 + 1e-12).
            continue
        # Cropping to the union box first is exact: the algorithm crops to it anyway.
        distances = compute_surface_distances(gts[box] == index + 1, segs[box] == index + 1, spacing, area_table)
        values[index] = surface_dice_at_tolerance(distances, tolerance)
    return values


def score_case(
    gts: np.ndarray,
    segs: np.ndarray,
    spacing: Sequence[float] | None,
    tolerance: float = TOLERANCE,
) -> Score:
    """Score one case; `spacing` None means a 2D case ((H, W) arrays)."""
    if gts.shape != segs.shape:
        raise ValueError(f"gts shape {gts.shape} != segs shape {segs.shape}")
    if spacing is None:
        if gts.ndim != 2:
            raise ValueError(f"a 2D case needs (H, W) arrays, got {gts.shape}")
        gts, segs, spacing = gts[..., None], segs[..., None], SPACING_2D
    elif gts.ndim != 3:
        raise ValueError(f"a 3D case needs (D, H, W) arrays, got {gts.shape}")
    if gts.size and gts.min() < 0:
        raise ValueError("gts has negative labels")

    num_labels = int(gts.max()) if gts.size else 0
    boxes = _label_boxes(gts, segs, num_labels)
    dice = _label_dice(gts, segs, boxes)
    # np.mean of no labels is NaN, as in the organisers' script (without its warning).
    dsc = float(np.mean(dice)) if num_labels else float("nan")
    if dsc > NSD_MIN_DSC:
        nsd_values = _label_nsd(gts, segs, boxes, spacing, tolerance)
        nsd = float(np.mean(nsd_values))
    else:
        nsd_values = np.zeros(num_labels)
        nsd = 0.0
    return Score(dsc, nsd, tuple(float(v) for v in dice), tuple(float(v) for v in nsd_values))
