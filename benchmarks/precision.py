"""How far a precision moves masks over whole cases: `python -m benchmarks.precision --precision bf16`.

Every case of each set (NAME=DIR, DIR holding inputs/ and gts/; default the demo
cases) is segmented twice by `python -m inference` with the same model, backend,
boxes and 3D propagation: in f32 and in --precision. Reported per case: the number of
objects, the least and the mean per-object Dice of the second's masks against the
first's, and each run's mean DSC against the ground truth. A precision may become a
default only where the least per-object Dice is >= 0.98 on every case and the DSC
does not drop.

On a CPU without native bf16, OpenVINO computes f32 whatever is asked and would
measure nothing: there the default backend is torch, whose bf16 emulates bf16
hardware's matrix products and convolutions (inference.bf16_emulation).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchmarks.docs import DOCS, cpu_model, publish
from benchmarks.profiles import parse_sets, segment
from casefiles import discover_cases
from common.overlap import label_dice
from evaluation.metrics.folder import evaluate_folder
from inference.registry import BACKENDS, native_bf16

TARGET_MIN_OBJECT_DICE = 0.98
# The mean DSC may not drop by more than this many points (rounding noise, not a loss).
DSC_TOLERANCE_POINTS = 0.005


def case_dsc(gts: Path, segs: Path) -> dict[str, float]:
    """Each case's DSC against the ground truth, in percent."""
    return {score.case: 100 * score.dsc for score in evaluate_folder(gts, segs)}


def compare_set(name: str, folder: Path, out: Path, options: list[str], precision: str) -> list[dict]:
    """One row per case of the set: objects, least and mean object Dice against f32, DSC of f32 and `precision`."""
    runs = {p: out / name / p for p in ("f32", precision)}
    for run_precision, segs in runs.items():
        print(f"{name}: {run_precision} ...", file=sys.stderr)
        segment(folder / "inputs", segs, [*options, "--precision", run_precision])
    dsc = {p: case_dsc(folder / "gts", segs) for p, segs in runs.items()}
    rows = []
    for case in discover_cases(folder / "inputs"):
        with np.load(runs["f32"] / case.name) as f32, np.load(runs[precision] / case.name) as other:
            dice = label_dice(f32["segs"], other["segs"])
        rows.append({"set": name, "case": case.name, "objects": len(dice), "min_object_dice": min(dice, default=1.0),
                     "mean_object_dice": float(np.mean(dice)) if dice else 1.0,
                     "dsc_f32": dsc["f32"].get(case.name), "dsc": dsc[precision].get(case.name)})
    return rows


def report(rows: list[dict], precision: str, backend: str) -> str:
    """The Markdown table and the targets."""
    lines = [f"| set | case | objects | least / mean object Dice, {precision} vs f32 | DSC f32 | DSC {precision} |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        scores = " | ".join("" if r[key] is None else f"{r[key]:.2f}" for key in ("dsc_f32", "dsc"))
        lines.append(f"| {r['set']} | {r['case']} | {r['objects']} | {r['min_object_dice']:.4f} / "
                     f"{r['mean_object_dice']:.4f} | {scores} |")
    scored = [r for r in rows if r["dsc"] is not None and r["dsc_f32"] is not None]
    least = min(r["min_object_dice"] for r in rows)
    drop = (np.mean([r["dsc_f32"] for r in scored]) - np.mean([r["dsc"] for r in scored])) if scored else 0.0
    lines += ["", "| target | measured | met |", "| --- | --- | --- |",
              f"| least per-object Dice vs f32 >= {TARGET_MIN_OBJECT_DICE} on every case | {least:.4f} | "
              f"{'yes' if least >= TARGET_MIN_OBJECT_DICE else 'no'} |",
              f"| mean DSC does not drop | {-drop:+.3f} points | {'yes' if drop <= DSC_TOLERANCE_POINTS else 'no'} |"]
    if precision == "bf16" and backend == "torch":
        lines += ["", "bf16 here is emulated (`inference/bf16_emulation.py`): every matrix product and convolution of "
                  "the encoder on bf16-rounded operands with f32 accumulation, its result rounded to bf16, as bf16 "
                  "hardware does; the decoder in f32."]
    elif precision == "bf16":
        lines += ["", "bf16 here is native (OpenVINO on this CPU's AVX512-BF16 or AMX): the encoder in bf16, the "
                  "decoder in f32."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Segment every set in f32 and in --precision, print the table and save it."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.precision", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", default="bf16", help="the precision to compare with f32 (default bf16)")
    parser.add_argument("--backend", default=None,
                        help="default: openvino where the CPU computes bf16 natively (or for int8), torch elsewhere")
    parser.add_argument("--model", default="auto", help="as python -m inference --model (default auto)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cases", nargs="*", default=["demo=demo_data"], metavar="NAME=DIR",
                        help="case sets, each DIR holding inputs/ and gts/ (default: demo=demo_data)")
    parser.add_argument("--out", type=Path, default=Path("runs/precision"))
    parser.add_argument("--docs", type=Path, default=DOCS,
                        help="the Markdown file whose section (one per precision and model) is replaced")
    parser.add_argument("--no-docs", action="store_true", help="leave the docs as they are")
    args = parser.parse_args(argv)
    backend = args.backend or ("torch" if args.precision == "bf16" and not native_bf16() else "openvino")
    if args.precision not in BACKENDS[backend].precisions or args.precision == "f32":
        parser.error(f"--precision {args.precision}: compare one of {', '.join(BACKENDS[backend].precisions)} "
                     f"other than f32 (--backend {backend})")
    options = ["--backend", backend, "--model", args.model, "--threads", str(args.threads)]
    out = args.out / args.model
    rows = [row for name, folder in parse_sets(args.cases).items()
            for row in compare_set(name, folder, out, options, args.precision)]
    text = report(rows, args.precision, backend)
    section = (f"precision-{args.precision}-{args.model}",
               f"How {args.precision} moves masks, whole cases, --model {args.model}")
    publish(out, args.precision, text, {"cpu": cpu_model(), "backend": backend, "rows": rows},
            "benchmarks.precision", argv, None if args.no_docs else section, args.docs)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
