"""Segment every case: `python -m inference -i INPUTS -o OUTPUTS`."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import cv2

from casefiles import discover_cases
from inference.backends import PRECISIONS
from inference.config import MODEL_CONFIGS
from inference.pipeline import CaseOutcome, process_cases, write_timings
from inference.profiling import Profile, TimedBackend, case_record
from inference.propagation import Propagation
from inference.runtime import BACKENDS, create_predictor
from inference.threads import available_cpus

LOG = logging.getLogger("inference")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m inference", description=__doc__)
    parser.add_argument("-i", "--input", type=Path, required=True, help="folder of case .npz files")
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for the segs .npz files")
    parser.add_argument("--model", default="litemedsam", choices=sorted(MODEL_CONFIGS))
    parser.add_argument("--backend", default="openvino", choices=BACKENDS)
    parser.add_argument("--precision", default="f32", choices=PRECISIONS,
                        help="openvino: f32, bf16 (faster only on some CPUs; moves masks) or int8 (int8 encoder; moves masks)")
    parser.add_argument("--checkpoint", type=Path, help="torch backend: weights (default: the manifest's)")
    parser.add_argument(
        "--propagation",
        default=Propagation.CLIPPED.value,
        choices=[p.value for p in Propagation],
        help="3D: keep propagated boxes inside the object's box (clipped) or reproduce the baseline",
    )
    parser.add_argument("--threads", type=int, help="default: cores allowed by affinity and cgroup quota")
    parser.add_argument("--timings", type=Path, help="write case,seconds,ok CSV here")
    parser.add_argument("--profile", type=Path, help="write where the time went (phases, encoder/decoder calls) as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


@contextmanager
def progress_bar(total: int) -> Iterator[Callable[[], object]]:
    """A bar over the cases, with log lines printed above it; tqdm is imported only here."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm(), tqdm(total=total, unit="case") as bar:
        yield bar.update


def main(argv: list[str] | None = None) -> int:
    """Run inference over a folder; exit status 1 if any case failed, 2 on a setup error."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    threads = args.threads or available_cpus()
    cv2.setNumThreads(threads)
    start = time.perf_counter()
    profile = Profile()
    profile.stamp("main")
    try:
        paths = discover_cases(args.input)
        predictor = create_predictor(args.model, args.backend, threads, args.checkpoint, args.precision)
    except (OSError, ValueError, KeyError, RuntimeError) as err:  # missing folder, model or weights
        LOG.error("error: %s", err)
        return 2
    profile.stamp("loaded")
    timed = TimedBackend(predictor.backend)
    if args.profile:
        predictor.backend = timed
    LOG.info("%d case(s) in %s; model %s on %s, %d thread(s)", len(paths), args.input, args.model, args.backend, threads)

    show_progress = not args.no_progress and sys.stderr.isatty()
    with progress_bar(len(paths)) if show_progress else nullcontext(lambda: None) as advance:
        totals = timed.totals()

        def on_done(outcome: CaseOutcome) -> None:
            nonlocal totals
            now = timed.totals()
            profile.cases.append(case_record(outcome.name, outcome.seconds, outcome.read_seconds,
                                             outcome.write_seconds, totals, now))
            totals = now
            advance()

        outcomes = process_cases(predictor, paths, args.output, Propagation(args.propagation), on_done)

    failed = [o for o in outcomes if not o.ok]
    if args.timings:
        write_timings(outcomes, args.timings)
    if args.profile:
        if timed.first_call is not None:
            profile.stamps["first_encode"] = timed.first_call
        profile.stamp("done")
        profile.save(args.profile)
    LOG.info(
        "done: %d case(s) written, %d failed, %.2fs in total",
        len(outcomes) - len(failed), len(failed), time.perf_counter() - start,
    )
    if failed:
        LOG.error("failed cases:")
    for outcome in failed:
        LOG.error("  %s", outcome.error)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
