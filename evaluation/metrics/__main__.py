"""Score predictions like the challenge: `python -m evaluation.metrics --seg DIR --gt DIR --csv FILE`."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from common.dask_cluster import dask_address
from evaluation.metrics.files import SPACING_ORDERS
from evaluation.metrics.folder import CaseScore, evaluate_folder, unmatched_predictions
from evaluation.metrics.table import write_label_metrics, write_metrics
from evaluation.runtime.table import Timing, read_runtime


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.metrics",
        description="Per-case DSC and NSD (tolerance 2) with the organisers' rules; writes case,dsc,nsd.",
    )
    parser.add_argument("--seg", type=Path, required=True, help="folder of predictions (npz with 'segs')")
    parser.add_argument("--gt", type=Path, required=True, help="folder of ground truth (npz with 'gts', 'spacing')")
    parser.add_argument("--csv", type=Path, required=True, help="output CSV: case,dsc,nsd")
    parser.add_argument("--per-label", type=Path, help="also write case,label,dsc,nsd rows to this CSV")
    parser.add_argument("--full-precision", action="store_true", help="do not round to 4 decimals")
    parser.add_argument(
        "--spacing-order", choices=SPACING_ORDERS, default="array",
        help="'array' (the challenge): spacing as stored, paired with the (D, H, W) axes; "
             "'xyz': stored in SimpleITK (x, y, z) order, so reverse it",
    )
    parallel = parser.add_mutually_exclusive_group()
    parallel.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parallel.add_argument("--dask", type=dask_address, metavar="ADDRESS",
                          help="score on the Dask scheduler at ADDRESS, or on local:N worker processes started here")
    parser.add_argument("--runtime", type=Path, help="runtime CSV (case,seconds[,peak_mb,ok]) to add seconds to the printout")
    parser.add_argument("--quiet", action="store_true", help="leave the per-case lines out of the printout")
    return parser.parse_args(argv)


def print_scores(scores: list[CaseScore], runtime: dict[str, Timing] | None, per_case: bool = True) -> None:
    """Per-case DSC / NSD (and seconds), the mean over cases, and every case scored 0 for its prediction.

    The per-modality leaderboard is python -m evaluation.report's job.
    """
    runtime = runtime or {}
    if per_case:
        for score in scores:
            seconds = runtime.get(score.case, Timing(math.nan)).seconds
            timing = "" if math.isnan(seconds) else f"  {seconds:8.2f} s"
            print(f"{score.case:<40} DSC {_percent(score.dsc):>6}  NSD {_percent(score.nsd):>6}{timing}")
    kept = [s for s in scores if not math.isnan(s.dsc)]
    if kept:
        print(f"mean over {len(kept)} case(s): DSC {_percent(float(np.mean([s.dsc for s in kept])))}, "
              f"NSD {_percent(float(np.mean([s.nsd for s in kept])))}")
    if len(kept) < len(scores):
        print(f"{len(scores) - len(kept)} case(s) with NaN DSC (a label absent from both masks) left out of the mean")
    failed = [s for s in scores if s.error]
    print(f"{len(scores)} case(s) scored, {len(failed)} scored 0 for an unusable prediction.")
    for score in failed:
        print(f"  {score.case}: {score.error}")


def _percent(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.2f}"


def main(argv: list[str] | None = None) -> int:
    """Score the folders, write the CSV(s) and print the scores."""
    args = parse_args(argv)
    try:
        scores = evaluate_folder(args.gt, args.seg, args.spacing_order, workers=args.workers, dask=args.dask)
        runtime = read_runtime(args.runtime) if args.runtime else None
        extra = unmatched_predictions(args.gt, args.seg)
    except (ValueError, OSError, RuntimeError) as error:  # RuntimeError: --dask without Dask installed
        print(f"error: {error}", file=sys.stderr)
        return 2
    digits = None if args.full_precision else 4
    write_metrics(args.csv, scores, digits)
    if args.per_label:
        write_label_metrics(args.per_label, scores, digits)
    print_scores(scores, runtime, per_case=not args.quiet)
    if extra:
        print(f"{len(extra)} prediction(s) without ground truth ignored: {', '.join(extra)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
