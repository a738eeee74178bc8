"""Segment every case: `python -m inference -i INPUTS -o OUTPUTS`."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path

import cv2

from casefiles import discover_cases, ignored_entries
from common.dask_cluster import dask_address, local_workers
from inference.backends import without_openvino_conversion_tools
from inference.config import MODEL_CONFIGS
from inference.interrupts import Interrupted, stop_on_signals
from inference.memory import return_large_blocks_to_the_system
from inference.outputs import prepare_output_dir
from inference.pipeline import CaseOutcome, Status, process_cases, write_timings
from inference.profiling import Profiler
from inference.propagation import Propagation
from inference.record import write_record
from inference.registry import AUTO_PRECISION, BACKENDS, PRECISIONS, resolve_precision
from inference.routing import AUTO
from inference.segmenter import Segmenter, WorkerStartError, build_segmenter
from inference.settings import RunSettings
from inference.threads import available_cpus

LOG = logging.getLogger("inference")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m inference", description=__doc__)
    parser.add_argument("-i", "--input", type=Path, required=True, help="folder of case .npz files")
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for the segs .npz files")
    defaults = RunSettings()
    parser.add_argument("--model", default=defaults.model, choices=[AUTO, *sorted(MODEL_CONFIGS)],
                        help=f"{AUTO}: each case by its modality, as inference/routing.json says")
    parser.add_argument("--backend", default=defaults.backend, choices=list(BACKENDS),
                        help="; ".join(f"{name}: {', '.join(spec.precisions)}" for name, spec in BACKENDS.items()))
    parser.add_argument("--precision", default=defaults.precision, choices=[*PRECISIONS, AUTO_PRECISION],
                        help="; ".join(f"{name}: {p.summary}" for name, p in PRECISIONS.items())
                        + f"; {AUTO_PRECISION}: bf16 where the CPU computes it natively (OpenVINO), else f32")
    parser.add_argument("--checkpoint", type=Path, help="torch backend: weights (default: the manifest's)")
    parser.add_argument(
        "--propagation",
        default=defaults.propagation.value,
        choices=[p.value for p in Propagation],
        help="3D: keep propagated boxes inside the object's box (clipped) or reproduce the baseline",
    )
    parser.add_argument("--slice-step", type=positive_int, default=defaults.slice_step, metavar="N",
                        help="3D: run the model on every Nth slice from each box's middle outwards and on its end "
                             "slices, and interpolate the masks between (default %(default)s: every slice)")
    parser.add_argument("--threads", type=int,
                        help="per worker; default: the cores allowed by affinity and cgroup quota, shared by the workers")
    parallel = parser.add_mutually_exclusive_group()
    parallel.add_argument("--workers", type=positive_int, default=1, metavar="N",
                          help="segment N cases at a time, each worker process loading the models once (default 1)")
    parallel.add_argument("--dask", type=dask_address, metavar="ADDRESS",
                          help="send the cases to the Dask scheduler at ADDRESS, or start local:N workers here "
                               "(needs the dask extra)")
    parser.add_argument("--timings", type=Path, help="write case,seconds,ok CSV here")
    parser.add_argument("--profile", type=Path, help="write where the time went (phases, encoder/decoder calls) as JSON")
    parser.add_argument("--case-timeout", type=positive_seconds, metavar="SECONDS",
                        help="abandon a case (recorded as timed out) once it has run this long")
    parser.add_argument("--resume", action="store_true", help="skip cases whose complete output already exists")
    parser.add_argument("--log", type=Path, help="also write the log to this file, and the run record next to it")
    parser.add_argument("--record", type=Path,
                        help="write the run record (case,status,seconds,error) here: .csv or .json "
                             "(default with --log: LOG with the suffix .record.json)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    if args.profile and (args.workers > 1 or args.dask):
        parser.error("--profile measures one process: leave out --workers and --dask")
    return args


def positive_int(text: str) -> int:
    """A whole number above zero, for argparse."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return value


def positive_seconds(text: str) -> float:
    """A number of seconds above zero, for argparse."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text}")
    return value


@contextmanager
def progress_bar(total: int) -> Iterator[Callable[[], object]]:
    """A bar over the cases, with log lines printed above it; tqdm is imported only here."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm(), tqdm(total=total, unit="case") as bar:
        yield bar.update


@contextmanager
def logging_setup(verbose: bool, log_file: Path | None) -> Iterator[None]:
    """Log lines to stderr, and within the block to `log_file` too when given."""
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    LOG.setLevel(level)  # also where the root logger was set up before (an embedding program, pytest)
    if log_file is None:
        yield
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def local_processes(args: argparse.Namespace) -> int | None:
    """How many processes segment cases on this machine at once (--workers or --dask local:N); None for a
    cluster elsewhere."""
    return local_workers(args.dask) if args.dask else args.workers


def threads_per_process(args: argparse.Namespace) -> int:
    """--threads, else the cores this process may use shared by the local workers (1 per worker of a cluster
    elsewhere); a warning where the workers ask for more threads than there are cores."""
    processes = local_processes(args)
    cpus = available_cpus()
    threads = args.threads or (1 if processes is None else max(1, cpus // processes))
    parallel = args.workers > 1 or args.dask
    if parallel and processes is not None and processes * threads > cpus:
        LOG.warning("WARNING %d worker(s) x %d thread(s) exceed the %d core(s) this process may use: "
                    "they will compete for them", processes, threads, cpus)
    return threads


def settings_from(args: argparse.Namespace) -> RunSettings:
    """The run's settings the options describe; threads default to the cores this process may use."""
    return RunSettings(
        model=args.model, backend=args.backend, precision=resolve_precision(args.precision, args.backend),
        checkpoint=args.checkpoint,
        threads=threads_per_process(args), propagation=Propagation(args.propagation), slice_step=args.slice_step,
        case_timeout=args.case_timeout,
    )


def case_runner(args: argparse.Namespace) -> Callable[..., list[CaseOutcome]]:
    """What segments the cases: `process_cases` here, or its form for local workers or a Dask cluster."""
    if args.dask:
        try:
            from inference.dask_run import run_on_dask  # Dask is an optional extra, not in the image
        except ImportError as err:
            raise RuntimeError(f"--dask needs the dask extra (pip install dask distributed): {err}") from err
        return partial(run_on_dask, address=args.dask, build=build_segmenter)
    if args.workers > 1:
        from inference.workers import run_workers  # imported only for a parallel run: start-up stays short

        return partial(run_workers, workers=args.workers, build=build_segmenter)
    return process_cases


def describe_parallelism(args: argparse.Namespace) -> str:
    """`, 2 worker processes` or `, on Dask local:2`; nothing for a serial run."""
    if args.dask:
        return f", on Dask {args.dask}"
    return f", {args.workers} worker processes" if args.workers > 1 else ""


def describe_model(segmenter: Segmenter) -> str:
    """The model, or for --model auto the routing: `auto (MR: swiftmedsam-v2, others: litemedsam)`."""
    routing = segmenter.routing
    if routing is None:
        return segmenter.settings.model
    routes = [f"{name}: {model}" for name, model in routing.by_modality.items()]
    return f"{AUTO} ({', '.join([*routes, f'others: {routing.fallback}'])})"


def record_path(args: argparse.Namespace) -> Path | None:
    """Where the run record goes: --record, else next to --log, else nowhere."""
    if args.record is not None:
        return args.record
    return None if args.log is None else args.log.with_suffix(".record.json")


def main(argv: list[str] | None = None) -> int:
    """Run inference over a folder.

    Exit status: 0 when every case was written (or skipped by --resume), 1 if any
    failed or timed out, 2 on a setup error (no work done), 128 + the signal number
    when SIGTERM or Ctrl-C stopped the run.
    """
    args = parse_args(argv)
    return_large_blocks_to_the_system()
    with logging_setup(args.verbose, args.log):
        return run(args)


def run(args: argparse.Namespace) -> int:
    """Segment the cases of `args.input` into `args.output`; the exit status of `main`."""
    profiler = Profiler() if args.profile else None
    settings = settings_from(args)
    cv2.setNumThreads(settings.threads)
    start = time.perf_counter()
    outcomes: list[CaseOutcome] = []
    stopped_by: Interrupted | None = None
    with stop_on_signals():
        try:
            paths = discover_cases(args.input)
            prepare_output_dir(args.output, args.input)
            ignored = ignored_entries(args.input)
            if args.workers > 1 or args.dask:
                segmenter = build_segmenter(settings, load_now=False)  # the workers load the models
            else:
                segmenter = build_segmenter(settings, profiler.instrument if profiler else None)
            process = case_runner(args)
        except (OSError, ValueError, KeyError, RuntimeError) as err:  # folders, model or weights, Dask missing
            LOG.error("error: %s", err)
            return 2
        except Interrupted as stop:
            LOG.error("stopped by %s before any case", stop)
            return 128 + stop.signum
        if ignored:
            LOG.warning("WARNING not cases, ignored in %s: %s", args.input, ", ".join(ignored))
        LOG.info("%d case(s) in %s; model %s on %s %s, %d thread(s)%s%s", len(paths), args.input,
                 describe_model(segmenter), settings.backend, settings.precision, settings.threads,
                 describe_parallelism(args), f", 3D slice step {settings.slice_step}" if settings.slice_step > 1 else "")

        show_progress = not args.no_progress and sys.stderr.isatty()
        with progress_bar(len(paths)) if show_progress else nullcontext(lambda: None) as advance:

            def on_done(outcome: CaseOutcome) -> None:
                outcomes.append(outcome)
                if profiler is not None:
                    profiler.case_ended(outcome.name, outcome.seconds, outcome.read_seconds, outcome.write_seconds,
                                        written=outcome.ok)
                advance()

            try:
                process(segmenter, paths, args.output, on_done, resume=args.resume)
            except Interrupted as stop:
                stopped_by = stop
            except (WorkerStartError, OSError) as err:  # workers that cannot load, a cluster out of reach
                LOG.error("error: %s", err)
                report(args, outcomes, time.perf_counter() - start, stopped_by, profiler)
                return 2
        report(args, outcomes, time.perf_counter() - start, stopped_by, profiler)
    if stopped_by is not None:
        return 128 + stopped_by.signum
    return 1 if any(o.failed for o in outcomes) else 0


def report(
    args: argparse.Namespace,
    outcomes: list[CaseOutcome],
    seconds: float,
    stopped_by: Interrupted | None,
    profiler: Profiler | None,
) -> None:
    """Write the timings, profile and run record asked for, and log the summary."""
    if args.timings:
        write_timings(outcomes, args.timings)
    if profiler is not None:
        profiler.save(args.profile)
    record = record_path(args)
    if record is not None:
        write_record(record, outcomes, seconds, None if stopped_by is None else str(stopped_by))
    counts = Counter(o.status for o in outcomes)
    parts = [f"{counts[Status.OK]} case(s) written"] + [
        f"{counts[status]} {status.value}" for status in Status
        if status is not Status.OK and (counts[status] or status is Status.FAILED)
    ]
    prefix = f"stopped by {stopped_by}" if stopped_by is not None else "done"
    LOG.info("%s: %s, %.2fs in total%s", prefix, ", ".join(parts), seconds,
             f"; run record {record}" if record is not None else "")
    failed = [o for o in outcomes if o.failed]
    if failed:
        LOG.error("failed cases:")
    for outcome in failed:
        LOG.error("  %s", outcome.error)


if __name__ == "__main__":
    without_openvino_conversion_tools()
    sys.exit(main())
