"""The order of a parallel run: largest cases first, read from the npz headers, and the memory each will hold."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from casefiles import CaseError, array_headers, is_3d
from inference.admission import memory_needed
from inference.outputs import complete_output
from inference.pipeline import CaseOutcome, Status
from inference.segmenter import Segmenter


@dataclass(frozen=True)
class PlannedCase:
    """A case to hand to a worker: its file, its voxel count and the bytes it will hold (0 where unreadable)."""

    path: Path
    voxels: int
    memory: int


def plan_case(path: Path) -> PlannedCase:
    """Size a case by its npz headers alone; an unreadable one sizes 0 (it fails at once in its worker)."""
    try:
        headers = array_headers(path)
        three_d = is_3d(path.name)
    except (CaseError, OSError):
        return PlannedCase(path, 0, 0)
    imgs = headers.get("imgs")
    voxels = math.prod(imgs[0]) if imgs is not None else 0
    return PlannedCase(path, voxels, memory_needed(headers, three_d) or 0)


def largest_first(segmenter: Segmenter, paths: list[Path]) -> list[PlannedCase]:
    """The cases in the segmenter's model order, the largest first within a model.

    Large cases first leave the small ones to fill the workers at the end, so the
    run ends balanced; the model order keeps each worker to one load per model.
    """
    planned = {path: plan_case(path) for path in paths}
    by_size = sorted(paths, key=lambda path: (-planned[path].voxels, path.name))
    return [planned[path] for path in segmenter.run_order(by_size)]


def cases_to_run(segmenter: Segmenter, paths: list[Path], output_dir: Path, resume: bool,
                 done: Callable[[CaseOutcome], None]) -> list[PlannedCase]:
    """The cases of a parallel run, largest first; with `resume`, those whose complete output exists are reported
    to `done` as skipped and left out."""
    todo = []
    for planned in largest_first(segmenter, paths):
        if resume and complete_output(planned.path, output_dir):
            logging.getLogger("inference").info("%s: skipped, its complete output exists (--resume)",
                                                planned.path.name)
            done(CaseOutcome(planned.path.name, 0.0, status=Status.SKIPPED))
        else:
            todo.append(planned)
    return todo
