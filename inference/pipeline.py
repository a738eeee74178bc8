"""Segment every case of an input folder into the output folder, one case at a time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from casefiles import CaseError
from inference.io import Case, load_case, new_label_map, paint, paint_over_earlier, write_segmentation
from inference.predictor import BoxPredictor, segment_image
from inference.propagation import Propagation
from inference.volume import segment_volume

LOG = logging.getLogger("inference")


@dataclass(frozen=True)
class CaseOutcome:
    """What happened to one case: its size and seconds, or why it failed."""

    name: str
    seconds: float
    shape: tuple[int, ...] = ()
    boxes: int = 0
    error: str | None = None
    read_seconds: float = 0.0
    write_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the case was segmented and written."""
        return self.error is None


def segment_case(predictor: BoxPredictor, case: Case, propagation: Propagation) -> np.ndarray:
    """Return the uint16 label map of a case: label k where box k's mask is, later boxes on top."""
    labels = new_label_map(case)
    if case.is_3d:
        for index, z, mask in segment_volume(predictor, case.image, case.boxes, propagation):
            paint_over_earlier(labels[z], mask, index + 1)
    else:
        for index, mask in enumerate(segment_image(predictor, case.image, case.boxes)):
            paint(labels, mask, index + 1)
    return labels


def process_case(predictor: BoxPredictor, path: Path, output_dir: Path, propagation: Propagation) -> CaseOutcome:
    """Load, segment and write one case; failures are returned, not raised.

    A CaseError (a file that breaks the contract) is logged as one line naming the
    case and the problem; any other exception is a bug and is logged with its traceback.
    """
    start = time.perf_counter()
    try:
        case = load_case(path)
        read = time.perf_counter()
        labels = segment_case(predictor, case, propagation)
        segmented = time.perf_counter()
        write_segmentation(output_dir, case.name, labels, expected_shape=case.spatial_shape)
    except CaseError as err:
        LOG.error("FAILED %s", err)
        return CaseOutcome(path.name, time.perf_counter() - start, error=str(err))
    except Exception as err:  # one broken case must not stop the others
        LOG.exception("FAILED %s: unexpected %s", path.name, type(err).__name__)
        return CaseOutcome(path.name, time.perf_counter() - start, error=f"{path.name}: {type(err).__name__}: {err}")
    end = time.perf_counter()
    outcome = CaseOutcome(case.name, end - start, case.image.shape, len(case.boxes),
                          read_seconds=read - start, write_seconds=end - segmented)
    LOG.info("%s shape=%s boxes=%d %.2fs", case.name, "x".join(map(str, outcome.shape)), outcome.boxes, outcome.seconds)
    return outcome


def process_cases(
    predictor: BoxPredictor,
    paths: Iterable[Path],
    output_dir: Path,
    propagation: Propagation,
    on_done: Callable[[CaseOutcome], None] = lambda outcome: None,
) -> list[CaseOutcome]:
    """Process every case in order, calling `on_done` after each."""
    outcomes = []
    for path in paths:
        outcome = process_case(predictor, path, output_dir, propagation)
        on_done(outcome)
        outcomes.append(outcome)
    return outcomes


def write_timings(outcomes: list[CaseOutcome], path: Path) -> None:
    """Write `case,seconds,ok` rows (seconds in-process, load to write), the form evaluation.runtime reads."""
    lines = ["case,seconds,ok"] + [f"{o.name},{o.seconds:.4f},{int(o.ok)}" for o in outcomes]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
