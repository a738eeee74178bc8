"""Cases on a Dask cluster: `python -m inference --dask ADDRESS` (an existing scheduler) or `--dask local:N`.

Imported only for --dask: Dask is an optional extra, not in the inference image.
Every Dask worker process builds the run's Segmenter once, in a worker plugin, and
segments one case per task, reading the input and writing the output (atomically)
on storage all workers see. When a worker is lost, Dask runs its case again on
another worker; the run record counts that. Outcomes come back to this process,
which keeps the run record and the summary.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
from distributed import Client, Future, WorkerPlugin, as_completed, get_worker
from distributed.scheduler import Scheduler

from common.dask_cluster import dask_client
from inference.backends import without_openvino_conversion_tools
from inference.interrupts import Interrupted
from inference.memory import peak_rss_mb, return_large_blocks_to_the_system
from inference.pipeline import CaseOutcome, Status, process_case
from inference.schedule import cases_to_run
from inference.segmenter import Segmenter, WorkerStartError
from inference.settings import RunSettings
from inference.workers import SegmenterBuild

LOG = logging.getLogger("inference")
PLUGIN_NAME = "inference-segmenter"


class SegmenterPlugin(WorkerPlugin):
    """Builds the run's Segmenter once in each Dask worker process (and in each worker that replaces one)."""

    name = PLUGIN_NAME

    def __init__(self, settings: RunSettings, build: SegmenterBuild, log_level: int) -> None:
        self.settings = settings
        self.build = build
        self.log_level = log_level
        self.segmenter: Segmenter | None = None
        self.lock: threading.Lock | None = None

    def setup(self, worker: object) -> None:
        """Load the models, with the run's threads for the backend."""
        without_openvino_conversion_tools()
        return_large_blocks_to_the_system()
        LOG.setLevel(self.log_level)  # a worker's loggers stop at WARNING unless told: the client forwards them
        cv2.setNumThreads(self.settings.threads)
        self.segmenter = self.build(self.settings)
        # A worker started with several threads runs several tasks at once; the segmenter takes one case at a time.
        self.lock = threading.Lock()


def segment_on_worker(path: str, output_dir: str) -> CaseOutcome:
    """The Dask task: one case with the worker's segmenter; its outcome names the worker and its peak RSS."""
    worker = get_worker()
    plugin: SegmenterPlugin = worker.plugins[PLUGIN_NAME]
    with plugin.lock:
        outcome = process_case(plugin.segmenter, Path(path), Path(output_dir))
    return replace(outcome, worker=worker.address, peak_rss_mb=peak_rss_mb())


def times_rescheduled(dask_scheduler: Scheduler, key: str) -> int:
    """On the scheduler: how often a worker was lost while it held the task (each time Dask sent it elsewhere)."""
    task = dask_scheduler.tasks.get(key)
    return 0 if task is None else task.suspicious


def collect(client: Client, future: Future, path: Path) -> CaseOutcome:
    """The outcome of a finished task, with the times it was rescheduled; a task that raised is a failed case."""
    rescheduled = client.run_on_scheduler(times_rescheduled, key=future.key)
    try:
        outcome = future.result()
    except Exception as err:  # e.g. KilledWorker: its workers kept dying
        error = f"{path.name}: {type(err).__name__}: {err}"
        LOG.error("FAILED %s", error)
        return CaseOutcome(path.name, 0.0, error=error, status=Status.FAILED, rescheduled=rescheduled)
    if rescheduled:
        LOG.warning("WARNING %s: rescheduled %d time(s) after the worker it was on was lost", path.name, rescheduled)
    return replace(outcome, rescheduled=rescheduled)


def run_on_dask(
    segmenter: Segmenter,
    paths: list[Path],
    output_dir: Path,
    on_done: Callable[[CaseOutcome], None] = lambda outcome: None,
    *,
    resume: bool = False,
    address: str,
    build: SegmenterBuild,
) -> list[CaseOutcome]:
    """`process_cases` on the Dask cluster at `address` (`local:N`: started here); workers build their segmenter
    with `build(segmenter.settings)`.

    The cases are submitted largest first within the segmenter's model order. On
    SIGTERM or Ctrl-C the tasks not finished are cancelled: those running are
    recorded as interrupted (a local cluster is stopped; on an external one a
    running task still ends with a complete output or none), the others as not started.
    """
    outcomes: list[CaseOutcome] = []

    def done(outcome: CaseOutcome) -> None:
        on_done(outcome)
        outcomes.append(outcome)

    todo = [planned.path for planned in cases_to_run(segmenter, list(paths), output_dir, resume, done)]
    if not todo:
        return outcomes
    with dask_client(address) as client:
        client.forward_logging(LOG.name, LOG.getEffectiveLevel())
        try:
            client.register_plugin(SegmenterPlugin(segmenter.settings, build, LOG.getEffectiveLevel()))
        except Exception as err:  # raised again here from a worker's setup
            raise WorkerStartError(f"a Dask worker could not load its models: {type(err).__name__}: {err}") from err
        run = uuid.uuid4().hex[:8]
        futures = {
            client.submit(segment_on_worker, str(path.resolve()), str(Path(output_dir).resolve()),
                          key=f"segment-{path.name}-{run}", priority=len(todo) - position, pure=False): path
            for position, path in enumerate(todo)
        }
        finished: set[str] = set()
        try:
            for future in as_completed(futures):
                done(collect(client, future, futures[future]))
                finished.add(future.key)
        except (Interrupted, KeyboardInterrupt) as stop:
            reason = f"interrupted by {stop}" if isinstance(stop, Interrupted) else "interrupted"
            running = {key for keys in client.processing().values() for key in keys}
            client.cancel([future for future in futures if future.key not in finished])
            for future, path in futures.items():
                if future.key in running and future.key not in finished:
                    LOG.error("STOPPED %s: %s before it finished", path.name, reason)
                    done(CaseOutcome(path.name, 0.0, status=Status.INTERRUPTED, error=f"{path.name}: {reason}"))
            for future, path in futures.items():
                if future.key not in running and future.key not in finished:
                    done(CaseOutcome(path.name, 0.0, status=Status.NOT_STARTED))
            raise
    return outcomes
