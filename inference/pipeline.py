"""Segment every case of an input folder into the output folder, one case at a time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.io import Case, load_case, new_label_map, paint, write_segmentation
from inference.predictor import BoxPredictor, segment_image
from inference.volume import Propagation, segment_volume

LOG = logging.getLogger("inference")


@dataclass(frozen=True)
class CaseResult:
    """What happened to one case."""

    name: str
    seconds: float
    shape: tuple[int, ...] = ()
    boxes: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the case was segmented and written."""
        return self.error is None


def segment_case(predictor: BoxPredictor, case: Case, propagation: Propagation) -> np.ndarray:
    """Return the uint16 label map of a case: label k where box k's mask is, later boxes on top."""
    labels = new_label_map(case)
    if case.is_3d:
        for index, z, mask in segment_volume(predictor, case.image, case.boxes, propagation):
            paint(labels[z], mask, index + 1)
    else:
        for index, mask in enumerate(segment_image(predictor, case.image, case.boxes)):
            paint(labels, mask, index + 1)
    return labels


def process_case(predictor: BoxPredictor, path: Path, output_dir: Path, propagation: Propagation) -> CaseResult:
    """Load, segment and write one case; failures are returned, not raised."""
    start = time.perf_counter()
    try:
        case = load_case(path)
        labels = segment_case(predictor, case, propagation)
        write_segmentation(output_dir, case.name, labels, expected_shape=case.spatial_shape)
    except Exception as err:  # one bad case must not stop the others
        LOG.debug("case %s failed", path.name, exc_info=True)
        message = str(err) if str(err).startswith(path.name) else f"{path.name}: {type(err).__name__}: {err}"
        return CaseResult(path.name, time.perf_counter() - start, error=message)
    return CaseResult(case.name, time.perf_counter() - start, case.image.shape, len(case.boxes))


def process_cases(
    predictor: BoxPredictor,
    paths: Iterable[Path],
    output_dir: Path,
    propagation: Propagation,
    report: Callable[[CaseResult], None] = lambda result: None,
) -> list[CaseResult]:
    """Process every case in order, calling `report` after each."""
    results = []
    for path in paths:
        result = process_case(predictor, path, output_dir, propagation)
        report(result)
        results.append(result)
    return results


def write_timings(results: list[CaseResult], path: Path) -> None:
    """Write `case,seconds,ok` rows (seconds in-process, load to write)."""
    lines = ["case,seconds,ok"] + [f"{r.name},{r.seconds:.4f},{int(r.ok)}" for r in results]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
