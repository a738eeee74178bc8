"""Score predictions like the challenge: `python -m evaluation.metrics --seg DIR --gt DIR --csv FILE`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evaluation.cases import SPACING_ORDERS
from evaluation.scoring import evaluate_folder, unmatched_predictions
from evaluation.summary import join, print_summary
from evaluation.tables import read_runtime, write_label_metrics, write_metrics


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
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--runtime", type=Path, help="runtime CSV (case,seconds[,peak_mb,ok]) to add seconds to the printout")
    parser.add_argument("--quiet", action="store_true", help="leave the per-case table out of the printout")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Score the folders, write the CSV(s) and print the summary."""
    args = parse_args(argv)
    try:
        results = evaluate_folder(args.gt, args.seg, args.spacing_order, workers=args.workers)
        runtime = read_runtime(args.runtime) if args.runtime else None
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    digits = None if args.full_precision else 4
    write_metrics(args.csv, results, digits)
    if args.per_label:
        write_label_metrics(args.per_label, results, digits)

    rows = join({r.case: (r.dsc, r.nsd) for r in results}, runtime)
    print_summary(rows, per_case=not args.quiet)
    failed = [r for r in results if r.error]
    print(f"\n{len(results)} case(s) scored, {len(failed)} scored 0 for an unusable prediction.")
    for result in failed:
        print(f"  {result.case}: {result.error}")
    extra = unmatched_predictions(args.gt, args.seg)
    if extra:
        print(f"{len(extra)} prediction(s) without ground truth ignored: {', '.join(extra)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
