"""Our default path against the baseline algorithm, each case a fresh process on one pinned core: `python -m benchmarks`.

For each case: seconds of the reference (python -m reference: torch eager, slices
re-encoded per box, one box per call of SAM's decoder arithmetic) and of our default
path (python -m inference), their ratio, peak RSS, the default path's breakdown from
its --profile (start-up: the lesser of our path's two runs), and the per-object Dice
between the reference's masks and ours. The Dice compares like with like: our path
with the reference's model and the baseline's propagation boxes (--model litemedsam
--propagation baseline), so that it measures what the backends change; the default
model routing and clipped propagation change masks on purpose.
Before the cases, the raw single-call latency of every backend and precision,
measured in the same run. The benchmark and every process it starts are pinned to
as many cores as --threads (the last of the allowed ones), so that background
threads compete for the same core, as under `docker run --cpus=1`. Nothing else
should run on the machine meanwhile: the figures are ratios, not times.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from benchmarks.docs import DOCS, measured_command, write_section
from casefiles import discover_cases
from common.atomic import write_atomic
from common.overlap import label_dice
from evaluation.runtime.harness import run_local
from inference.profiling import read_profile
from inference.registry import BACKENDS, backend_precisions
from inference.routing import AUTO, read_routing
from inference.settings import RunSettings

# Targets of the fast path.
TARGET_GEOMEAN, TARGET_EACH = 5.0, 3.0
TARGET_STARTUP_S, TARGET_PEAK_MB = 0.5, 600.0
OVERHEAD_FACTOR, OVERHEAD_SLACK_S = 1.15, 0.5
# The model of the reference: our path runs it too where masks are compared.
REFERENCE_MODEL = "litemedsam"


def our_model(case: str) -> str:
    """The model our default path segments the case with (by the routing table under --model auto)."""
    model = RunSettings().model
    return read_routing().model_for(case) if model == AUTO else model


def raw_latencies(python: str, threads: int, ours: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], dict]:
    """benchmarks.latency, each in a fresh process: the reference's model on every backend and precision, and
    `ours`, the (model, backend, precision) our path runs."""
    wanted = [(REFERENCE_MODEL, backend, precision) for backend, precision in backend_precisions()]
    results = {}
    for model, backend, precision in [*wanted, *(key for key in ours if key not in wanted)]:
        command = [python, "-m", "benchmarks.latency", "--model", model, "--backend", backend, "--precision",
                   precision, "--threads", str(threads)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results[(model, backend, precision)] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


def run_case(case: Path, python: str, threads: int, out: Path, precision: str) -> dict:
    """Time one case with the reference and with the default path; compare their masks."""
    row: dict = {"case": case.name, "model": our_model(case.name)}
    reference = run_local(case, f"{python} -m reference -i {{inputs}} -o {{outputs}} --threads {threads}",
                          save_to=out / "reference")
    profile, same_profile = (out / "profiles" / f"{case.stem}.{name}.json" for name in ("fast", "same-boxes"))
    ours = f"{python} -m inference -i {{inputs}} -o {{outputs}} --threads {threads} --precision {precision} --no-progress"
    launched = time.time()
    fast = run_local(case, f"{ours} --profile {profile}", save_to=out / "fast")
    launched_again = time.time()
    same_boxes = run_local(case, f"{ours} --model {REFERENCE_MODEL} --propagation baseline --profile {same_profile}",
                           save_to=out / "same-boxes")
    for name, run in (("reference", reference), ("fast", fast), ("same-boxes", same_boxes)):
        if not run.timing.ok:
            raise RuntimeError(f"{case.name}: the {name} run failed ({run.message})")
    for name, run in (("reference", reference), ("fast", fast)):
        row[f"{name}_s"], row[f"{name}_peak_mb"] = run.timing.seconds, run.timing.peak_mb
    with np.load(out / "reference" / case.name) as ref, np.load(out / "same-boxes" / case.name) as ours:
        dice = label_dice(ref["segs"], ours["segs"])
    row["min_object_dice"], row["mean_object_dice"] = min(dice, default=1.0), float(np.mean(dice)) if dice else 1.0
    recorded = read_profile(profile)
    [record] = recorded.cases
    # Start-up is fixed work and the machine's noise only adds to it: the lesser of our two runs.
    again = read_profile(same_profile)
    row["startup_s"] = min(recorded.startup_seconds(launched), again.startup_seconds(launched_again))
    row["load_s"] = recorded.load_seconds
    row["encoder"], row["decoder"], row["new_images"] = (
        asdict(record.calls.encoder), asdict(record.calls.decoder), asdict(record.calls.new_images))
    row["io_s"] = record.read + record.write
    row["post_s"] = record.other_seconds
    return row


def report(latency: dict, rows: list[dict], ours: tuple[str, str]) -> str:
    """The benchmark's Markdown: raw latencies, per-case table, breakdown, targets; `ours`: backend, precision."""
    lines = ["### Raw single-call latency (one thread)", "",
             "| model | backend | load s | encoder ms | decoder ms, box on a new image | decoder ms/box, same image, "
             "batch 1 / 4 / 16 |", "| --- | --- | --- | --- | --- | --- |"]
    for (model, backend, precision), r in latency.items():
        per_box = " / ".join(f"{r['decoder_ms_per_box'][b]:.1f}" for b in ("1", "4", "16"))
        lines.append(f"| {model} | {backend} {precision} | {r['load_s']:.2f} | {r['encoder_ms']:.0f} | "
                     f"{r['decoder_new_image_ms']:.1f} | {per_box} |")
    lines += ["", f"### Cases (fresh process each, one thread, pinned core; ours: --model {RunSettings().model}, "
              f"{' '.join(ours)})", "",
              "| case | our model | reference s | ours s | speed-up | peak MB ref / ours | "
              "object Dice vs reference (same model and boxes), min / mean |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        r["ratio"] = r["reference_s"] / r["fast_s"]
        lines.append(f"| {r['case']} | {r['model']} | {r['reference_s']:.2f} | {r['fast_s']:.2f} | {r['ratio']:.2f}x | "
                     f"{r['reference_peak_mb']:.0f} / {r['fast_peak_mb']:.0f} | "
                     f"{r['min_object_dice']:.4f} / {r['mean_object_dice']:.4f} |")
    lines += ["", "### Where our time goes", "",
              "| case | start-up s | load s | encoder calls x ms | decoder calls (boxes, new images) x ms | post s | "
              "I/O s | wall / (calls x raw latency) |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        enc, dec, new = r["encoder"], r["decoder"], r["new_images"]["calls"]
        raw = latency[(r["model"], *ours)]
        expected = (enc["calls"] * raw["encoder_ms"] + new * raw["decoder_new_image_ms"]
                    + (dec["items"] - new) * raw["decoder_ms_per_box"]["1"]) / 1000
        r["overhead_ok"] = r["fast_s"] <= OVERHEAD_FACTOR * expected + OVERHEAD_SLACK_S
        lines.append(
            f"| {r['case']} | {r['startup_s']:.2f} | {r['load_s']:.2f} | "
            f"{enc['calls']} x {1000 * enc['seconds'] / max(enc['calls'], 1):.0f} | "
            f"{dec['calls']} ({dec['items']}, {new}) x {1000 * dec['seconds'] / max(dec['calls'], 1):.0f} | "
            f"{r['post_s']:.2f} | {r['io_s']:.2f} | {r['fast_s']:.2f} / {expected:.2f} s |"
        )
    ratios = [r["ratio"] for r in rows]
    geomean = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
    checks = [
        (f"geometric-mean speed-up >= {TARGET_GEOMEAN}x", f"{geomean:.2f}x", geomean >= TARGET_GEOMEAN),
        (f"every case >= {TARGET_EACH}x", f"min {min(ratios):.2f}x", min(ratios) >= TARGET_EACH),
        (f"start-up <= {TARGET_STARTUP_S} s", f"max {max(r['startup_s'] for r in rows):.2f} s",
         max(r["startup_s"] for r in rows) <= TARGET_STARTUP_S),
        (f"peak RSS <= {TARGET_PEAK_MB:.0f} MB", f"max {max(r['fast_peak_mb'] for r in rows):.0f} MB",
         max(r["fast_peak_mb"] for r in rows) <= TARGET_PEAK_MB),
        (f"wall <= {OVERHEAD_FACTOR} x calls x raw latency + {OVERHEAD_SLACK_S} s",
         f"{sum(r['overhead_ok'] for r in rows)} of {len(rows)} cases", all(r["overhead_ok"] for r in rows)),
        ("per-object Dice vs reference >= 0.995", f"min {min(r['min_object_dice'] for r in rows):.4f}",
         min(r["min_object_dice"] for r in rows) >= 0.995),
    ]
    lines += ["", "### Targets", "", "| target | measured | met |", "| --- | --- | --- |"]
    lines += [f"| {name} | {value} | {'yes' if ok else 'no'} |" for name, value, ok in checks]
    return "\n".join(lines) + "\n"


def pin_to_cores(count: int) -> list[int]:
    """Restrict this process, and every process it starts, to the last `count` of its allowed cores."""
    chosen = sorted(os.sched_getaffinity(0))[-count:]
    os.sched_setaffinity(0, chosen)
    return chosen


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print its Markdown and save it (with raw JSON) under --out."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=Path, default=Path("demo_data/inputs"))
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cases", nargs="+", help="only these case file names")
    parser.add_argument("--precision", default=RunSettings().precision, choices=BACKENDS["openvino"].precisions,
                        help="our path's OpenVINO precision (default: the default of python -m inference)")
    parser.add_argument("--docs", type=Path, default=DOCS, help="the Markdown file whose benchmark section is replaced")
    parser.add_argument("--no-docs", action="store_true",
                        help="leave the docs as they are (e.g. for a subset of cases)")
    args = parser.parse_args(argv)
    cases = [p for p in discover_cases(args.inputs) if not args.cases or p.name in args.cases]
    if not cases:
        print(f"error: no cases in {args.inputs}", file=sys.stderr)
        return 2
    python = sys.executable
    print(f"pinned to core(s) {pin_to_cores(args.threads)}", file=sys.stderr)
    latency = raw_latencies(python, args.threads,
                            sorted({(our_model(case.name), "openvino", args.precision) for case in cases}))
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out) as scratch:
        rows = [run_case(case, python, args.threads, Path(scratch), args.precision) for case in cases]
    text = report(latency, rows, ("openvino", args.precision))
    write_atomic(args.out / "benchmark.md", text)
    if not args.no_docs:
        command = measured_command("benchmarks", sys.argv[1:] if argv is None else argv)
        write_section("speed", "Speed against the baseline algorithm", command, text, args.docs)
    write_atomic(args.out / "benchmark.json", json.dumps(
        {"latency": {" ".join(key): v for key, v in latency.items()}, "cases": rows}, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
