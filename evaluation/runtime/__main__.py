"""Time every case alone, as the organisers did: `python -m evaluation.runtime --inputs DIR --image IMAGE --csv FILE`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from casefiles import discover_cases
from evaluation.runtime.harness import CaseRun, DockerOptions, run_docker, run_local
from evaluation.runtime.table import write_runtime


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.runtime",
        description="One case per fresh container (or local command), wall clock from start to exit; "
                    "writes case,seconds,peak_mb,ok.",
    )
    parser.add_argument("--inputs", type=Path, required=True, help="folder of case npz files")
    parser.add_argument("--csv", type=Path, required=True, help="output CSV: case,seconds,peak_mb,ok")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--image", help="docker image, e.g. team:latest (runs 'sh predict.sh' inside)")
    target.add_argument(
        "--command",
        help="local command with {inputs} and {outputs}, e.g. 'python -m inference -i {inputs} -o {outputs}'",
    )
    parser.add_argument("--memory", default="8G", help="docker -m limit (default 8G, as the organisers)")
    parser.add_argument("--cpus", type=float, help="docker --cpus limit (default: none, as the organisers)")
    parser.add_argument("--docker", default="docker", help="docker executable")
    parser.add_argument("--timeout", type=float, help="seconds after which a case is killed and marked not ok")
    parser.add_argument("--save-outputs", type=Path, help="copy each case's prediction here (for scoring)")
    parser.add_argument("--cases", nargs="+", help="only these case file names")
    args = parser.parse_args(argv)
    if args.cpus is not None and args.cpus <= 0:
        parser.error("--cpus must be positive")
    if args.timeout is not None and args.timeout <= 0:
        parser.error("--timeout must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run each case alone, write the CSV, print one line per case."""
    args = parse_args(argv)
    try:
        cases = [path.name for path in discover_cases(args.inputs)]
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.cases:
        unknown = sorted(set(args.cases) - set(cases))
        if unknown:
            print(f"error: not in {args.inputs}: {', '.join(unknown)}", file=sys.stderr)
            return 2
        cases = [c for c in cases if c in set(args.cases)]
    if not cases:
        print(f"error: no .npz cases in {args.inputs}", file=sys.stderr)
        return 2

    options = DockerOptions(args.image, args.memory, args.cpus, args.docker) if args.image else None
    rows = []
    for case in cases:
        case_file = args.inputs / case
        try:
            if options:
                run: CaseRun = run_docker(case_file, options, args.timeout, args.save_outputs)
            else:
                run = run_local(case_file, args.command, args.timeout, args.save_outputs)
        except (ValueError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        rows.append((case, run.timing))
        print(f"{case}: {run.timing.seconds:.2f} s, peak {run.timing.peak_mb:.0f} MB, {run.message}", flush=True)
    write_runtime(args.csv, rows)
    failed = sum(not timing.ok for _, timing in rows)
    print(f"{len(rows)} case(s) timed, {failed} not ok; written to {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
