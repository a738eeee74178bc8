"""Pictures to look at: one overlay per case and one figure of DSC and seconds per modality."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from casefiles import CaseError, is_3d
from common.atomic import atomic_path
from evaluation.metrics.files import load_ground_truth, load_input, load_prediction
from evaluation.report.leaderboard import CaseRow, aggregate

GT_COLOUR = (0.0, 1.0, 0.0)
PRED_COLOUR = (1.0, 0.0, 1.0)
BOX_COLOUR = "yellow"


def label_boundaries(labels: np.ndarray) -> np.ndarray:
    """Object pixels of a 2D label map that touch a different label (or the image edge)."""
    padded = np.pad(labels, 1)
    centre = padded[1:-1, 1:-1]
    edge = np.zeros(labels.shape, bool)
    for neighbour in (padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]):
        edge |= neighbour != centre
    return edge & (labels > 0)


def pick_slice(gts: np.ndarray) -> int:
    """The slice of a (D, H, W) label map with the most foreground (the middle one if empty)."""
    area = np.count_nonzero(gts.reshape(gts.shape[0], -1), axis=1)
    return int(np.argmax(area)) if area.any() else gts.shape[0] // 2


def box_segments(boxes: np.ndarray, z: int | None) -> list[list[tuple[float, float]]]:
    """Rectangle outlines of 2D boxes (x0, y0, x1, y1), or of 3D boxes whose z range holds slice `z`."""
    outlines = []
    for box in np.asarray(boxes, dtype=float).reshape(len(boxes), -1):
        if z is None:
            x0, y0, x1, y1 = box[:4]
        else:
            x0, y0, z0, x1, y1, z1 = box[:6]
            if not z0 <= z <= z1:
                continue
        outlines.append([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)])
    return outlines


def render_overlay(
    path: Path,
    image: np.ndarray,
    gts: np.ndarray,
    segs: np.ndarray | None,
    outlines: list[list[tuple[float, float]]],
    title: str,
) -> None:
    """Write a PNG: the image, GT contours (green), predicted contours (magenta), boxes (yellow)."""
    height, width = gts.shape
    # One figure pixel per image pixel, within 300..1200 pixels a side.
    scale = min(1.0, 1200 / max(height, width))
    figure = Figure(figsize=(max(width * scale, 300) / 100, max(height * scale, 300) / 100 + 0.4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1 - 0.4 / figure.get_figheight()))
    axes.imshow(image, cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
    layer = np.zeros((height, width, 4))
    layer[label_boundaries(gts)] = (*GT_COLOUR, 1.0)
    if segs is not None:
        layer[label_boundaries(segs)] = (*PRED_COLOUR, 1.0)
    axes.imshow(layer, interpolation="nearest")
    axes.add_collection(LineCollection(outlines, colors=BOX_COLOUR, linewidths=0.6))
    axes.set_axis_off()
    axes.set_title(title, fontsize=8)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lstrip("."))


def case_overlay(case: str, inputs_dir: Path, gt_dir: Path, seg_dir: Path, out_dir: Path, row: CaseRow | None = None) -> Path:
    """Write `out_dir/<case>.png` for one case; a missing prediction is drawn as none."""
    image, boxes = load_input(inputs_dir / case)
    gts = load_ground_truth(gt_dir / case).gts
    try:
        segs: np.ndarray | None = load_prediction(seg_dir / case, gts.shape)
        note = ""
    except CaseError as error:
        segs, note = None, f" | prediction {error.problem}"
    z = pick_slice(gts) if is_3d(case) else None
    if z is not None:
        image, gts = image[z], gts[z]
        segs = None if segs is None else segs[z]
    title = case + ("" if z is None else f" | slice {z}")
    if row is not None:
        title += f" | DSC {row.dsc:.4f} NSD {row.nsd:.4f}"
    path = out_dir / f"{Path(case).stem}.png"
    render_overlay(path, image, gts, segs, box_segments(boxes, z), title + note)
    return path


def modality_figure(path: Path, rows: list[CaseRow]) -> None:
    """Write a PNG with per-case DSC and seconds per modality (points) and their means (bars)."""
    groups = [g for g in aggregate(rows) if g.name != "Overall"]
    names = [g.name for g in groups]
    figure = Figure(figsize=(max(6.0, 1.2 * len(names) + 3), 3.5), dpi=100)
    FigureCanvasAgg(figure)
    panels = figure.subplots(1, 2)
    for axes, field, label in ((panels[0], "dsc", "DSC"), (panels[1], "seconds", "seconds per case")):
        means = [getattr(g, field) for g in groups]
        axes.bar(range(len(names)), [0 if math.isnan(m) else m for m in means], color="lightsteelblue")
        for index, name in enumerate(names):
            values = [getattr(r, field) for r in rows if r.modality == name and not math.isnan(getattr(r, field))]
            axes.plot([index] * len(values), values, "o", color="navy", markersize=3)
        axes.set_xticks(range(len(names)), names, rotation=30, ha="right")
        axes.set_ylabel(label)
    panels[0].set_ylim(0, 1)
    panels[1].set_ylim(bottom=0)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lstrip("."))
