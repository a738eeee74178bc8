"""Cases in parallel on one machine: `python -m inference --workers N`, one process per worker.

Each worker process builds the run's Segmenter once and segments the cases the main
process hands it, one at a time, through its own pipe, so the main process always
knows which case each worker holds. A worker that dies (killed, out of memory) fails
only that case, with the reason, and a new worker takes its place. On SIGTERM or
Ctrl-C the workers stop at their next Python instruction, as a serial run does: their
cases in progress write nothing, and the cases not handed out are not started.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from logging.handlers import QueueHandler
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path

import cv2

from inference.backends import without_openvino_conversion_tools
from inference.interrupts import Interrupted, stop_on_signals
from inference.memory import peak_rss_mb, return_large_blocks_to_the_system
from inference.pipeline import CaseOutcome, Status, process_case
from inference.schedule import PlannedCase, cases_to_run
from inference.segmenter import Segmenter, WorkerStartError
from inference.settings import RunSettings

LOG = logging.getLogger("inference")
# What a worker runs to get its segmenter: build_segmenter, or a stand-in in tests. It is sent to
# spawned processes, so it must be picklable (a module-level function or an instance of a module-level class).
SegmenterBuild = Callable[[RunSettings], Segmenter]
READY = "ready"
# Seconds a stopping worker gets to finish its model call and exit before it is killed.
STOP_GRACE_S = 120.0


@dataclass(frozen=True)
class Task:
    """A case for a worker, and the memory the other workers' cases are about to take."""

    path: Path
    reserved_memory: int


@dataclass(frozen=True)
class StartFailed:
    """A worker's message that building its segmenter failed, and why."""

    error: str


class PipeSender:
    """The `put_nowait` a QueueHandler calls, sending each log record down a worker's pipe."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def put_nowait(self, item: logging.LogRecord) -> None:
        """Send the record to the main process, which logs it."""
        self.connection.send(item)


def serve(connection: Connection, settings: RunSettings, build: SegmenterBuild, output_dir: Path,
          log_level: int) -> None:
    """A worker process: build the segmenter once, then segment each Task received until None comes.

    Its log records and each case's outcome (with its pid and peak RSS) go back
    through `connection`. SIGTERM or SIGINT ends it with 128 + the signal number.
    """
    without_openvino_conversion_tools()
    return_large_blocks_to_the_system()
    root = logging.getLogger()
    root.handlers = [QueueHandler(PipeSender(connection))]
    root.setLevel(log_level)
    LOG.setLevel(log_level)
    worker = str(os.getpid())
    with stop_on_signals():
        try:
            cv2.setNumThreads(settings.threads)
            try:
                segmenter = build(settings)
            except Exception as err:  # the main process reports it and stops the run
                connection.send(StartFailed(f"{type(err).__name__}: {err}"))
                return
            connection.send(READY)
            while (task := connection.recv()) is not None:
                outcome = process_case(segmenter, task.path, output_dir, task.reserved_memory)
                connection.send(replace(outcome, worker=worker, peak_rss_mb=peak_rss_mb()))
        except Interrupted as stop:
            sys.exit(128 + stop.signum)
        except EOFError:
            return  # the main process is gone


def describe_exit(exitcode: int | None) -> str:
    """How a worker process ended, from its exit code: `was killed by SIGKILL (out of memory?)`, `exited with status 1`."""
    if exitcode is None:
        return "stopped answering"
    if exitcode < 0:
        name = signal.Signals(-exitcode).name
        return f"was killed by {name}" + (" (out of memory?)" if -exitcode == signal.SIGKILL else "")
    return f"exited with status {exitcode}"


@dataclass
class Slot:
    """One worker process, its pipe, and the case it holds."""

    process: BaseProcess
    connection: Connection
    ready: bool = False
    task: PlannedCase | None = None
    started: float = 0.0


def hand_out(slots: list[Slot], queue: deque[PlannedCase]) -> None:
    """Send the next cases of `queue` to the ready, idle workers among `slots`.

    Each case's memory check holds back what the cases of the busy workers will
    take (their admission estimates): those may not have allocated it yet.
    """
    for slot in slots:
        if not queue or not slot.ready or slot.task is not None:
            continue
        planned = queue.popleft()
        reserved = sum(other.task.memory for other in slots if other.task is not None)
        try:
            slot.connection.send(Task(planned.path, reserved))
        except OSError:  # it died meanwhile: the case waits for the next worker
            queue.appendleft(planned)
            continue
        slot.task, slot.started = planned, time.perf_counter()


class WorkerPool:
    """The worker processes of a run (spawned: no engine state is shared with the main process)."""

    def __init__(self, count: int, settings: RunSettings, build: SegmenterBuild, output_dir: Path) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._worker_args = (settings, build, output_dir, LOG.getEffectiveLevel())
        self.slots = [self._start() for _ in range(count)]

    def _start(self) -> Slot:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=serve, args=(theirs, *self._worker_args), daemon=True,
                                        name="inference-worker")
        process.start()
        theirs.close()
        return Slot(process, ours)

    def busy(self) -> bool:
        """Whether any worker holds a case."""
        return any(slot.task is not None for slot in self.slots)

    def hand_out(self, queue: deque[PlannedCase]) -> None:
        """Give the next cases of `queue` to the idle workers (see `hand_out`)."""
        hand_out(self.slots, queue)

    def wait(self, restart: bool) -> list[CaseOutcome]:
        """Block until a worker reports or dies; the outcomes that came. A dead worker's case fails, and with
        `restart` a new worker takes its place."""
        waiting = {}
        for slot in self.slots:
            waiting[slot.connection] = waiting[slot.process.sentinel] = slot
        outcomes: list[CaseOutcome] = []
        for ready in wait(list(waiting)):
            slot = waiting[ready]
            if slot not in self.slots:
                continue  # replaced already: its pipe and its sentinel were both ready
            outcomes += self._receive(slot)
            if not slot.process.is_alive():
                slot.process.join()
                outcomes += self._replace(slot, restart)
        return outcomes

    def _receive(self, slot: Slot) -> list[CaseOutcome]:
        """Handle what the worker has sent: log records, readiness, outcomes."""
        outcomes = []
        try:
            while slot.connection.poll():
                message = slot.connection.recv()
                if isinstance(message, logging.LogRecord):
                    logging.getLogger(message.name).handle(message)
                elif message == READY:
                    slot.ready = True
                elif isinstance(message, StartFailed):
                    raise WorkerStartError(f"a worker could not load its models: {message.error}")
                else:
                    outcomes.append(message)
                    slot.task = None
        except (EOFError, OSError):
            slot.process.join(STOP_GRACE_S)  # its pipe closed: it is exiting
        return outcomes

    def _replace(self, slot: Slot, restart: bool) -> list[CaseOutcome]:
        """A dead worker: its case fails with the reason, and a new worker starts if `restart`."""
        how = describe_exit(slot.process.exitcode)
        if not slot.ready:
            raise WorkerStartError(f"a worker process {how} before its models were loaded")
        index = self.slots.index(slot)
        slot.connection.close()
        if restart:
            self.slots[index] = self._start()
            LOG.info("worker process %s started in place of %s", self.slots[index].process.pid, slot.process.pid)
        else:
            del self.slots[index]
        if slot.task is None:
            LOG.warning("WARNING a worker process (pid %s) %s between cases", slot.process.pid, how)
            return []
        name = slot.task.path.name
        error = f"{name}: its worker process (pid {slot.process.pid}) {how} while segmenting it"
        LOG.error("FAILED %s", error)
        return [CaseOutcome(name, time.perf_counter() - slot.started, error=error, status=Status.FAILED,
                            worker=str(slot.process.pid))]

    def stop(self, signum: int, reason: str) -> list[CaseOutcome]:
        """Signal every worker to stop, wait for them; the outcomes of cases that finished meanwhile and of those
        interrupted."""
        for slot in self.slots:
            if slot.process.is_alive():
                os.kill(slot.process.pid, signum)
        outcomes: list[CaseOutcome] = []
        deadline = time.monotonic() + STOP_GRACE_S
        for slot in self.slots:
            while slot.process.is_alive() and time.monotonic() < deadline:
                outcomes += self._receive(slot)
                slot.process.join(0.05)
            outcomes += self._receive(slot)
            if slot.task is not None:
                name = slot.task.path.name
                LOG.error("STOPPED %s: %s before it finished", name, reason)
                outcomes.append(CaseOutcome(name, time.perf_counter() - slot.started, status=Status.INTERRUPTED,
                                            error=f"{name}: {reason}", worker=str(slot.process.pid)))
                slot.task = None
        return outcomes

    def close(self) -> None:
        """Ask every worker to exit, and end those that do not."""
        for slot in self.slots:
            try:
                slot.connection.send(None)
            except OSError:
                pass  # already gone
        for slot in self.slots:
            slot.process.join(STOP_GRACE_S if slot.task is None else 0)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            slot.connection.close()


def run_workers(
    segmenter: Segmenter,
    paths: list[Path],
    output_dir: Path,
    on_done: Callable[[CaseOutcome], None] = lambda outcome: None,
    *,
    resume: bool = False,
    workers: int,
    build: SegmenterBuild,
) -> list[CaseOutcome]:
    """`process_cases` in `workers` processes: each builds its segmenter with `build(segmenter.settings)`.

    `segmenter` (its models need not be loaded) gives the settings and the model
    order; within it the largest cases go first. With `resume`, a case whose
    complete output exists is skipped. On SIGTERM or Ctrl-C, `on_done` hears of the
    cases in progress and those not started before the interruption is raised again.
    """
    outcomes: list[CaseOutcome] = []

    def done(outcome: CaseOutcome) -> None:
        on_done(outcome)
        outcomes.append(outcome)

    queue = deque(cases_to_run(segmenter, list(paths), output_dir, resume, done))
    if not queue:
        return outcomes
    pool = WorkerPool(min(workers, len(queue)), segmenter.settings, build, output_dir)
    try:
        while queue or pool.busy():
            pool.hand_out(queue)
            for outcome in pool.wait(restart=bool(queue)):
                done(outcome)
    except (Interrupted, KeyboardInterrupt) as stop:
        signum = stop.signum if isinstance(stop, Interrupted) else signal.SIGINT
        reason = f"interrupted by {stop}" if isinstance(stop, Interrupted) else "interrupted"
        for outcome in pool.stop(signum, reason):
            done(outcome)
        for planned in queue:
            done(CaseOutcome(planned.path.name, 0.0, status=Status.NOT_STARTED))
        raise
    finally:
        pool.close()
    return outcomes
