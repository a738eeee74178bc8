"""Our default path against the baseline, each case a fresh process on one pinned core: `python -m benchmarks`.

The cases: the demo's, or with --typical the typical mix of demo.typical_cases (one
object or a few per case, as most challenge cases; the geometric mean weighs the
one-object cases as ONE_OBJECT_SHARE of the mix). With --organizers the organizers'
own script (benchmarks.organizers) is timed too, and the speed-ups and targets are
against it.

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
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from benchmarks.cores import pin_to_cores
from benchmarks.docs import DOCS, publish
from benchmarks.mix import ONE_OBJECT_SHARE, case_weights, is_one_object_3d, weighted_geomean
from benchmarks.organizers import COMMIT, REPOSITORY, fetch_script, script_command
from casefiles import discover_cases
from checkpoints.manifest import checkpoint_for
from common.overlap import label_dice
from demo.typical_cases import write_typical
from demo.wheels import default_cache_dir
from evaluation.runtime.harness import run_local
from inference.profiling import read_profile
from inference.registry import BACKENDS, backend_precisions
from inference.routing import AUTO, read_routing
from inference.settings import RunSettings

# Targets of the fast path; with --organizers, one-object 3D cases have their own.
TARGET_GEOMEAN, TARGET_EACH, TARGET_ONE_OBJECT_3D = 5.0, 3.0, 3.5
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


def run_case(case: Path, python: str, threads: int, out: Path, precision: str, organizers: str | None) -> dict:
    """Time one case with the reference (and the organizers' script command `organizers`) and with the default
    path; compare their masks."""
    row: dict = {"case": case.name, "model": our_model(case.name)}
    reference = run_local(case, f"{python} -m reference -i {{inputs}} -o {{outputs}} --threads {threads}",
                          save_to=out / "reference")
    if organizers:
        script = run_local(case, organizers, save_to=out / "organizers")
        if not script.timing.ok:
            raise RuntimeError(f"{case.name}: the organizers' script failed ({script.message})")
        row["organizers_s"], row["organizers_peak_mb"] = script.timing.seconds, script.timing.peak_mb
        with np.load(out / "reference" / case.name) as ref, np.load(out / "organizers" / case.name) as theirs:
            row["organizers_dice"] = min(label_dice(ref["segs"], theirs["segs"]), default=1.0)
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
    organizers = all("organizers_s" in r for r in rows)
    lines += ["", f"### Cases (fresh process each, one thread, pinned core; ours: --model {RunSettings().model}, "
              f"{' '.join(ours)})", ""]
    header = "| case | our model | reference s | ours s | speed-up |"
    if organizers:
        header += " organizers' script s | speed-up against it | their masks vs reference, min object Dice |"
    lines += [header + " peak MB ref / ours | object Dice vs reference (same model and boxes), min / mean |",
              "| --- " * (header.count("|") - 1) + "| --- | --- |"]
    for r in rows:
        r["ratio"] = r["reference_s"] / r["fast_s"]
        line = f"| {r['case']} | {r['model']} | {r['reference_s']:.2f} | {r['fast_s']:.2f} | {r['ratio']:.2f}x |"
        if organizers:
            r["organizers_ratio"] = r["organizers_s"] / r["fast_s"]
            line += f" {r['organizers_s']:.2f} | {r['organizers_ratio']:.2f}x | {r['organizers_dice']:.4f} |"
        lines.append(line + f" {r['reference_peak_mb']:.0f} / {r['fast_peak_mb']:.0f} | "
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
    against = "the organizers' script" if organizers else "the reference"
    ratios = [r["organizers_ratio" if organizers else "ratio"] for r in rows]
    geomean = weighted_geomean(ratios, [r["weight"] for r in rows])
    checks = [
        (f"geometric-mean speed-up against {against} >= {TARGET_GEOMEAN}x", f"{geomean:.2f}x",
         geomean >= TARGET_GEOMEAN),
        (f"every case >= {TARGET_EACH}x", f"min {min(ratios):.2f}x", min(ratios) >= TARGET_EACH),
    ]
    one_object_3d = [ratio for ratio, r in zip(ratios, rows) if is_one_object_3d(r["case"], r["objects"])]
    if one_object_3d:
        checks.append((f"one-object 3D cases >= {TARGET_ONE_OBJECT_3D}x", f"min {min(one_object_3d):.2f}x",
                       min(one_object_3d) >= TARGET_ONE_OBJECT_3D))
    checks += [
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


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print its Markdown and save it (with raw JSON) under --out."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=Path, default=Path("demo_data/inputs"))
    parser.add_argument("--typical", action="store_true",
                        help="the typical mix (demo.typical_cases, built under --out) instead of --inputs")
    parser.add_argument("--organizers", action="store_true",
                        help=f"also time the organizers' script ({REPOSITORY} at {COMMIT[:12]}) and compare with it")
    parser.add_argument("--organizers-repo", type=Path,
                        help=f"a local clone of {REPOSITORY} to take the script from instead of GitHub")
    parser.add_argument("--cache", type=Path, default=default_cache_dir(),
                        help="where the organizers' script and the demo wheels are kept (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cases", nargs="+", help="only these case file names")
    parser.add_argument("--precision", default=RunSettings().precision, choices=BACKENDS["openvino"].precisions,
                        help="our path's OpenVINO precision (default: the default of python -m inference)")
    parser.add_argument("--docs", type=Path, default=DOCS, help="the Markdown file whose benchmark section is replaced")
    parser.add_argument("--no-docs", action="store_true",
                        help="leave the docs as they are (e.g. for a subset of cases)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    classes = write_typical(args.out / "typical", args.cache) if args.typical else {}
    inputs = args.out / "typical" / "inputs" if args.typical else args.inputs
    cases = [p for p in discover_cases(inputs) if not args.cases or p.name in args.cases]
    if not cases:
        print(f"error: no cases in {inputs}", file=sys.stderr)
        return 2
    python = sys.executable
    organizers = None
    if args.organizers:
        folder = fetch_script(args.cache, args.organizers_repo)
        organizers = script_command(folder, python, checkpoint_for(REFERENCE_MODEL).path, args.out / "overlays")
    print(f"pinned to core(s) {pin_to_cores(args.threads)}", file=sys.stderr)
    latency = raw_latencies(python, args.threads,
                            sorted({(our_model(case.name), "openvino", args.precision) for case in cases}))
    with tempfile.TemporaryDirectory(dir=args.out) as scratch:
        rows = [run_case(case, python, args.threads, Path(scratch), args.precision, organizers) for case in cases]
    for row, weight in zip(rows, case_weights(classes, [case.name for case in cases])):
        row["objects"], row["weight"] = classes.get(row["case"]), weight
    text = report(latency, rows, ("openvino", args.precision))
    if args.typical:
        text = (f"Typical mix: one-object cases weigh {ONE_OBJECT_SHARE:.0%} of the geometric mean "
                f"({', '.join(f'{name}: {kind}' for name, kind in classes.items())}).\n\n{text}")
    section = (("typical", "Speed on typical cases") if args.typical
               else ("speed", "Speed against the baseline algorithm"))
    publish(args.out, "benchmark", text, {"latency": {" ".join(key): v for key, v in latency.items()}, "cases": rows},
            "benchmarks", argv, None if args.no_docs else section, args.docs)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
