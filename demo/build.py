"""Write demo cases as challenge input files and ground-truth files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.atomic import atomic_file
from common.label_boxes import label_boxes
from demo.sources import DemoCase, brain_mr, nuclei_2d, nuclei_3d
from demo.wheels import NILEARN, STARDIST, default_cache_dir, fetch_wheel


def build_demo(out_dir: Path, cache_dir: Path | None = None) -> list[Path]:
    """Write ``out_dir/inputs/*.npz`` and ``out_dir/gts/*.npz``; return the input files."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    stardist = fetch_wheel(STARDIST, cache_dir)
    nilearn = fetch_wheel(NILEARN, cache_dir)
    cases = [
        nuclei_2d(stardist, "2DBox_Microscope_0001.npz"),
        nuclei_3d(stardist, "3DBox_Microscope_0002.npz"),
        brain_mr(nilearn, "3DBox_MR_0003.npz"),
    ]
    return [write_case(Path(out_dir), case) for case in cases]


def spacing_array(spacing: tuple[float, float, float] | None) -> dict[str, np.ndarray]:
    """The `spacing` entry of a case file: float64 (3,), or nothing for a 2D case."""
    return {} if spacing is None else {"spacing": np.array(spacing, dtype=np.float64)}


def write_input(
    folder: Path, name: str, image: np.ndarray, boxes: np.ndarray, spacing: tuple[float, float, float] | None
) -> Path:
    """Write an input case file `folder/name` (imgs, boxes[, spacing]) as the organisers do."""
    path = folder / name
    with atomic_file(path) as handle:
        np.savez_compressed(handle, imgs=image, boxes=boxes, **spacing_array(spacing))
    return path


def write_case(out_dir: Path, case: DemoCase) -> Path:
    """Write one case's input file (imgs, boxes[, spacing]) and ground truth (gts[, spacing])."""
    path = write_input(out_dir / "inputs", case.name, case.image, label_boxes(case.gts), case.spacing)
    with atomic_file(out_dir / "gts" / case.name) as handle:
        np.savez_compressed(handle, gts=case.gts.astype(np.uint16), **spacing_array(case.spacing))
    return path
