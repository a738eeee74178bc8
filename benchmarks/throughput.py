"""Throughput over a whole folder: serial against --workers N against Dask local:N, `python -m benchmarks.throughput`.

The folder is demo.throughput_cases' (41 small real cases, 2D and 3D). Each run is one
`python -m inference` process over all of it, side by side on the same N pinned cores:
- serial, one thread (the per-core baseline the scaling is measured against);
- serial, N threads (the default of one process on N cores);
- --workers N, one thread each;
- --dask local:N, one thread each.
For each: cases per hour (wall clock of the whole command, start-up included), the
ratio to the one-thread serial run, the scaling efficiency (that ratio / N), the peak
RSS per worker process (from the run record; for a serial run, the process's own;
a Dask worker also holds the Dask runtime) and whether its outputs are identical to
the one-thread serial run's.
With --repeats R (default 2) the --workers and Dask runs are made R times each, in
alternating order (workers first, then Dask first, ...), and the table shows their mean
seconds: on a shared virtual machine the CPU time a run gets drifts by 10% from one
run to the next, enough to hide or invent the 10% gap the target is about.
Nothing else should run on the machine meanwhile: the figures are ratios, not times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.cores import pin_to_cores
from benchmarks.docs import DOCS, publish
from casefiles import discover_cases
from demo.throughput_cases import build_throughput_cases

TARGET_WORKERS_SPEEDUP = 1.8  # --workers 2 against the one-thread serial run, on 2 cores
TARGET_DASK_WITHIN = 0.10  # Dask local:N within 10% of --workers N


def run(name: str, options: list[str], inputs: Path, folder: Path) -> dict:
    """One `python -m inference` over `inputs` into `folder`: seconds, cases per hour, peak RSS per worker, the
    outputs folder."""
    outputs, record = folder / "outputs", folder / "record.json"
    command = [sys.executable, "-m", "inference", "-i", str(inputs), "-o", str(outputs), "--no-progress",
               "--record", str(record), *options]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    done = json.loads(record.read_text())
    if process.returncode != 0 or done["counts"].get("ok", 0) != len(done["cases"]):
        raise RuntimeError(f"{name}: exit status {process.returncode}, statuses {done['counts']}")
    # A serial run segments in the process itself; Linux reports ru_maxrss in KiB.
    peaks = [w["peak_rss_mb"] for w in done["workers"]] or [usage.ru_maxrss / 1024]
    return {"run": name, "options": options, "cases": len(done["cases"]), "seconds": seconds,
            "cases_per_hour": 3600 * len(done["cases"]) / seconds, "peak_rss_mb": peaks, "outputs": str(outputs)}


def identical(one: Path, other: Path) -> bool:
    """Whether two output folders hold the same files with equal `segs`."""
    names = sorted(os.listdir(one))
    if names != sorted(os.listdir(other)):
        return False
    for name in names:
        with np.load(one / name) as a, np.load(other / name) as b:
            if a["segs"].dtype != b["segs"].dtype or not np.array_equal(a["segs"], b["segs"]):
                return False
    return True


def mean_run(repeats: list[dict], reference: Path) -> dict:
    """One row for the repeats of a run: mean seconds (and cases per hour from it), the seconds of each, the peak
    RSS per worker of the repeat with the highest, and whether every repeat's outputs equal `reference`'s."""
    seconds = float(np.mean([r["seconds"] for r in repeats]))
    peaks = max((r["peak_rss_mb"] for r in repeats), key=max)  # the repeat with the highest
    return {**repeats[0], "seconds": seconds, "each_seconds": [r["seconds"] for r in repeats],
            "cases_per_hour": 3600 * repeats[0]["cases"] / seconds, "peak_rss_mb": peaks,
            "identical": all(identical(reference, Path(r["outputs"])) for r in repeats)}


def report(rows: list[dict], cores: int, cases: Path, repeats: int) -> str:
    """The Markdown table and the targets."""
    base = rows[0]
    lines = [f"{base['cases']} cases ({len(list(cases.glob('2D*.npz')))} 2D, {len(list(cases.glob('3D*.npz')))} 3D), "
             f"{cores} pinned cores; the --workers and Dask seconds are the mean of {repeats} runs each "
             "(each run's in brackets), made in alternating order.", "",
             "| run | seconds | cases per hour | vs serial, 1 thread | scaling efficiency | peak RSS per worker MB | "
             "outputs identical |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        r["speedup"] = r["cases_per_hour"] / base["cases_per_hour"]
        processes = max(1, len(r["peak_rss_mb"]))
        r["efficiency"] = r["speedup"] / cores if processes > 1 else None
        efficiency = "" if r["efficiency"] is None else f"{100 * r['efficiency']:.0f}%"
        each = " / ".join(f"{seconds:.0f}" for seconds in r["each_seconds"])
        lines.append(f"| {r['run']} | {r['seconds']:.1f} ({each}) | {r['cases_per_hour']:.0f} | {r['speedup']:.2f}x | "
                     f"{efficiency} | {' / '.join(f'{p:.0f}' for p in r['peak_rss_mb'])} | "
                     f"{'yes' if r['identical'] else 'no'} |")
    by_name = {r["run"]: r for r in rows}
    workers, dask = by_name[f"--workers {cores}"], by_name[f"--dask local:{cores}"]
    serial_peak = max(base["peak_rss_mb"])
    checks = [
        (f"--workers {cores} >= {TARGET_WORKERS_SPEEDUP}x serial (1 thread)", f"{workers['speedup']:.3f}x",
         workers["speedup"] >= TARGET_WORKERS_SPEEDUP),
        (f"Dask local:{cores} within {100 * TARGET_DASK_WITHIN:.0f}% of --workers {cores}",
         f"{dask['cases_per_hour'] / workers['cases_per_hour']:.3f}x",
         dask["cases_per_hour"] >= (1 - TARGET_DASK_WITHIN) * workers["cases_per_hour"]),
        *((f"peak RSS per worker, {r['run']}, <= the serial run's",
           f"{max(r['peak_rss_mb']):.0f} MB vs {serial_peak:.0f} MB",
           round(max(r["peak_rss_mb"])) <= round(serial_peak))
          for r in (workers, dask)),
        ("outputs identical to the serial run's (1 thread per process)", "",
         workers["identical"] and dask["identical"]),
    ]
    lines += ["", "| target | measured | met |", "| --- | --- | --- |"]
    lines += [f"| {name} | {value} | {'yes' if ok else 'no'} |" for name, value, ok in checks]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Build the cases (unless --inputs), run the four ways, print the table and save it under --out."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=Path, help="a folder of cases (default: build demo.throughput_cases')")
    parser.add_argument("--cores", type=int, default=2, help="cores to pin to, and the number of workers (default 2)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs of --workers and of Dask, their mean reported (default 2)")
    parser.add_argument("--max-cases", type=int, help="only the first N cases (a smoke test; leaves the docs)")
    parser.add_argument("--out", type=Path, default=Path("runs/throughput"))
    parser.add_argument("--docs", type=Path, default=DOCS, help="the Markdown file whose throughput section is replaced")
    parser.add_argument("--no-docs", action="store_true", help="leave the docs as they are")
    args = parser.parse_args(argv)
    print(f"pinned to core(s) {pin_to_cores(args.cores)}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out) as scratch_dir:
        scratch = Path(scratch_dir)
        inputs = args.inputs or scratch / "cases" / "inputs"
        if args.inputs is None:
            build_throughput_cases(inputs.parent)
        if args.max_cases:
            subset = scratch / "subset"
            subset.mkdir()
            for path in discover_cases(inputs)[: args.max_cases]:
                (subset / path.name).symlink_to(path.resolve())
            inputs = subset
        runs = [("serial, 1 thread", ["--threads", "1"]), (f"serial, {args.cores} threads", []),
                (f"--workers {args.cores}", ["--workers", str(args.cores), "--threads", "1"]),
                (f"--dask local:{args.cores}", ["--dask", f"local:{args.cores}", "--threads", "1"])]
        made: dict[str, list[dict]] = {name: [] for name, _ in runs}
        order = runs[:2] + [pair for repeat in range(args.repeats)
                            for pair in (runs[2:] if repeat % 2 == 0 else runs[:1:-1])]
        for name, options in order:
            folder = scratch / f"run{runs.index((name, options))}-{len(made[name])}"
            print(f"{name} ({len(made[name]) + 1}) ...", file=sys.stderr)
            made[name].append(run(name, options, inputs, folder))
        reference = Path(made[runs[0][0]][0]["outputs"])
        rows = [mean_run(repeats, reference) for repeats in made.values()]
        text = report(rows, args.cores, inputs, args.repeats)
    section = ("throughput", "Throughput over a folder: workers and Dask")
    publish(args.out, "throughput", text, {"cores": args.cores, "runs": rows}, "benchmarks.throughput", argv,
            None if args.no_docs or args.max_cases else section, args.docs)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
