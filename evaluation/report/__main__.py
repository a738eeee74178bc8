"""Leaderboard report: `python -m evaluation.report --metrics CSV --runtime CSV --out DIR`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.atomic import write_atomic
from evaluation.metrics.table import read_metrics
from evaluation.report.figures import case_overlay, modality_figure
from evaluation.report.leaderboard import (
    aggregate,
    cases_markdown,
    join,
    leaderboard_markdown,
    print_leaderboard,
    write_cases_csv,
    write_leaderboard_csv,
)
from evaluation.runtime.table import read_runtime


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.report",
        description="Join metrics and runtimes into the leaderboard table (Markdown, CSV) and figures.",
    )
    parser.add_argument("--metrics", type=Path, required=True, help="case,dsc,nsd CSV (evaluation.metrics)")
    parser.add_argument("--runtime", type=Path,
                        help="case,seconds CSV (inference --timings) or case,seconds,peak_mb,ok (evaluation.runtime)")
    parser.add_argument("--out", type=Path, required=True, help="folder for leaderboard.md/.csv, cases.csv and PNGs")
    parser.add_argument("--inputs", type=Path, help="input npz folder; with --gt and --seg, draws one overlay per case")
    parser.add_argument("--gt", type=Path, help="ground-truth npz folder (for overlays)")
    parser.add_argument("--seg", type=Path, help="prediction npz folder (for overlays)")
    parser.add_argument("--quiet", action="store_true", help="leave the per-case table out of the printout")
    args = parser.parse_args(argv)
    given = [args.inputs is not None, args.gt is not None, args.seg is not None]
    if any(given) and not all(given):
        parser.error("overlays need all of --inputs, --gt and --seg")
    return args


def main(argv: list[str] | None = None) -> int:
    """Write the report files and print the per-case and per-modality tables."""
    args = parse_args(argv)
    try:
        rows = join(read_metrics(args.metrics), read_runtime(args.runtime) if args.runtime else None)
        groups = aggregate(rows)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(
        args.out / "leaderboard.md", "# Leaderboard\n\n" + leaderboard_markdown(groups) + "\n\n## Cases\n\n" + cases_markdown(rows) + "\n"
    )
    write_leaderboard_csv(args.out / "leaderboard.csv", groups)
    write_cases_csv(args.out / "cases.csv", rows)
    modality_figure(args.out / "modalities.png", rows)
    if args.inputs is not None:
        for row in rows:
            try:
                case_overlay(row.case, args.inputs, args.gt, args.seg, args.out / "overlays", row)
            except ValueError as error:
                print(f"no overlay for {row.case}: {error}", file=sys.stderr)
    print_leaderboard(rows, per_case=not args.quiet)
    print(f"\nReport written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
