"""Segment every case of an input folder into the output folder, one case at a time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from casefiles import CaseError
from common.atomic import write_atomic
from inference.cases import load_case
from inference.interrupts import CaseTimeout, Interrupted, deadline
from inference.memory import available_memory
from inference.outputs import complete_output, write_segmentation
from inference.segmenter import Segmenter

LOG = logging.getLogger("inference")


class Status(str, Enum):
    """How a case ended."""

    OK = "ok"
    SKIPPED = "skipped"  # --resume: its complete output was there already
    FAILED = "failed"
    TIMED_OUT = "timed out"
    INTERRUPTED = "interrupted"
    NOT_STARTED = "not started"


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
    status: Status = Status.OK
    warnings: tuple[str, ...] = ()
    model: str | None = None  # the model that segmented it (or was to)
    worker: str | None = None  # the worker process that ran it (--workers: its pid; --dask: its address)
    peak_rss_mb: float | None = None  # that worker's peak resident memory when the case ended
    rescheduled: int = 0  # --dask: how often Dask sent it to another worker after losing the one it was on

    @property
    def ok(self) -> bool:
        """Whether the case was segmented and written in this run."""
        return self.status is Status.OK

    @property
    def failed(self) -> bool:
        """Whether the case was attempted and has no new output (failed, timed out or interrupted)."""
        return self.status in (Status.FAILED, Status.TIMED_OUT, Status.INTERRUPTED)


def process_case(segmenter: Segmenter, path: Path, output_dir: Path, reserved_memory: int = 0) -> CaseOutcome:
    """Load, segment and write one case; failures are returned, not raised.

    A CaseError (a file that breaks the contract) is logged as one line naming the
    case and the problem; any other exception is a bug and is logged with its
    traceback. A case past the settings' case timeout is abandoned. Interrupted passes.
    `reserved_memory` (bytes) is held back from the memory check for what other
    workers' cases are about to take.
    """
    start = time.perf_counter()
    model: str | None = None

    def failure(status: Status, error: str) -> CaseOutcome:
        return CaseOutcome(path.name, time.perf_counter() - start, error=error, status=status, model=model)

    try:
        with deadline(segmenter.settings.case_timeout):
            model = segmenter.model_for(path.name)
            memory = available_memory()
            case = load_case(path, None if memory is None else memory - reserved_memory)
            for warning in case.warnings:
                LOG.warning("WARNING %s: %s", case.name, warning)
            read = time.perf_counter()
            label_map = segmenter.segment(case)
        segmented = time.perf_counter()
        write_segmentation(output_dir, case.name, label_map, expected_shape=case.spatial_shape)
    except CaseTimeout as err:
        LOG.error("FAILED %s: %s", path.name, err)
        return failure(Status.TIMED_OUT, f"{path.name}: {err}")
    except CaseError as err:
        LOG.error("FAILED %s", err)
        return failure(Status.FAILED, str(err))
    except Exception as err:  # one broken case must not stop the others
        LOG.exception("FAILED %s: unexpected %s", path.name, type(err).__name__)
        return failure(Status.FAILED, f"{path.name}: {type(err).__name__}: {err}")
    end = time.perf_counter()
    outcome = CaseOutcome(case.name, end - start, case.image.shape, len(case.boxes),
                          read_seconds=read - start, write_seconds=end - segmented, warnings=case.warnings, model=model)
    LOG.info("%s shape=%s boxes=%d model=%s %.2fs", case.name, "x".join(map(str, outcome.shape)), outcome.boxes, model,
             outcome.seconds)
    return outcome


def process_cases(
    segmenter: Segmenter,
    paths: Iterable[Path],
    output_dir: Path,
    on_done: Callable[[CaseOutcome], None] = lambda outcome: None,
    *,
    resume: bool = False,
) -> list[CaseOutcome]:
    """Process every case in the segmenter's run order, calling `on_done` after each; return the outcomes.

    With `resume`, a case whose complete output exists is skipped. When the run is
    interrupted (SIGTERM, Ctrl-C), `on_done` hears of the case in progress and of
    every case not started before the interruption is raised again.
    """
    paths = segmenter.run_order(list(paths))
    outcomes: list[CaseOutcome] = []
    for position, path in enumerate(paths):
        if resume and complete_output(path, output_dir):
            LOG.info("%s: skipped, its complete output exists (--resume)", path.name)
            outcome = CaseOutcome(path.name, 0.0, status=Status.SKIPPED)
        else:
            start = time.perf_counter()
            try:
                outcome = process_case(segmenter, path, output_dir)
            except (Interrupted, KeyboardInterrupt) as stop:
                reason = f"interrupted by {stop}" if isinstance(stop, Interrupted) else "interrupted"
                LOG.error("STOPPED %s: %s before it finished", path.name, reason)
                on_done(CaseOutcome(path.name, time.perf_counter() - start, status=Status.INTERRUPTED,
                                    error=f"{path.name}: {reason}"))
                for rest in paths[position + 1 :]:
                    on_done(CaseOutcome(rest.name, 0.0, status=Status.NOT_STARTED))
                raise
        on_done(outcome)
        outcomes.append(outcome)
    return outcomes


def write_timings(outcomes: list[CaseOutcome], path: Path) -> None:
    """Write `case,seconds,ok` rows of the cases attempted (seconds in-process, load to write), the form evaluation.runtime reads."""
    attempted = [o for o in outcomes if o.status not in (Status.SKIPPED, Status.NOT_STARTED)]
    lines = ["case,seconds,ok"] + [f"{o.name},{o.seconds:.4f},{int(o.ok)}" for o in attempted]
    write_atomic(path, "\n".join(lines) + "\n")
