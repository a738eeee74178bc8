"""What the 3D slice step saves and what it costs in accuracy: `python -m benchmarks.slice_step`.

The 3D cases of the typical mix (demo.typical_cases) and of each --cases set (NAME=DIR,
DIR holding inputs/ and gts/) are segmented by `python -m inference --slice-step N`
for each N of --steps, with one model. Reported per set and step: the mean DSC and NSD
against the ground truth, the largest drop of one case's DSC below step 1, and the
encoder calls (counted by --profile) as a share of step 1's. Choose a step on a
training split (`python -m training.images` writes one) and confirm it on the others.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

from benchmarks.docs import DOCS, publish
from benchmarks.profiles import parse_sets, segment
from casefiles import discover_cases
from demo.typical_cases import write_typical
from demo.wheels import default_cache_dir
from evaluation.metrics.folder import evaluate_folder
from inference.profiling import read_profile
from inference.routing import AUTO


def three_d_only(folder: Path, out: Path) -> Path:
    """`out` with inputs/ and gts/ linking the 3D cases of `folder`."""
    for sub in ("inputs", "gts"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for case in discover_cases(folder / "inputs"):
        if case.name.startswith("3D"):
            for sub in ("inputs", "gts"):
                (out / sub / case.name).symlink_to((folder / sub / case.name).resolve())
    return out


def measure_step(folder: Path, out: Path, model: str, step: int) -> dict[str, dict]:
    """Per case: DSC, NSD and encoder calls of `--slice-step step`."""
    profile = out.with_suffix(".profile.json")
    segment(folder / "inputs", out, ["--model", model, "--threads", "1", "--slice-step", str(step),
                                     "--profile", str(profile)])
    calls = {record.case: record.calls.encoder.calls for record in read_profile(profile).cases}
    return {score.case: {"dsc": 100 * score.dsc, "nsd": 100 * score.nsd, "encoder_calls": calls[score.case]}
            for score in evaluate_folder(folder / "gts", out)}


def summarise(cases: dict[int, dict[str, dict]]) -> list[dict]:
    """One row per step: means, the worst DSC change against step 1 and the encoder calls' share of step 1's.

    DSC and NSD are averaged over the cases with ground-truth objects (a case without
    any scores NaN, as in the organizers' script); encoder calls count every case.
    """
    first = cases[min(cases)]
    rows = []
    for step, scores in sorted(cases.items()):
        names = sorted(n for n in scores if not math.isnan(first[n]["dsc"]))
        rows.append({
            "step": step, "cases": len(names),
            "dsc": sum(scores[n]["dsc"] for n in names) / len(names),
            "nsd": sum(scores[n]["nsd"] for n in names) / len(names),
            "worst_dsc_change": min(scores[n]["dsc"] - first[n]["dsc"] for n in names),
            "encoder_share": sum(scores[n]["encoder_calls"] for n in scores) / sum(first[n]["encoder_calls"]
                                                                                   for n in scores),
        })
    return rows


def report(summaries: dict[str, list[dict]], model: str) -> str:
    """The Markdown table: one row per set and step."""
    lines = [f"Model: `{model}`; 3D cases only; DSC and NSD over the cases with ground-truth objects.", "",
             "| set | step | cases scored | DSC | NSD | worst case DSC change vs step 1 | encoder calls vs step 1 |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, rows in summaries.items():
        for r in rows:
            lines.append(f"| {name} | {r['step']} | {r['cases']} | {r['dsc']:.2f} | {r['nsd']:.2f} | "
                         f"{r['worst_dsc_change']:+.2f} | {100 * r['encoder_share']:.0f}% |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Segment every set at every step, print the table and save it."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.slice_step", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="*", default=["demo=demo_data"], metavar="NAME=DIR",
                        help="case sets besides the typical mix (default: demo=demo_data)")
    parser.add_argument("--steps", nargs="+", type=int, default=[1, 2, 3, 4], metavar="N",
                        help="slice steps to measure; the first is the reference (default: 1 2 3 4)")
    parser.add_argument("--model", default=AUTO, help="the model option of every run (default: %(default)s)")
    parser.add_argument("--cache", type=Path, default=default_cache_dir(),
                        help="where the demo wheels are kept (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("runs/slice-step"))
    parser.add_argument("--docs", type=Path, default=DOCS, help="the Markdown file whose slice-step section is replaced")
    parser.add_argument("--no-docs", action="store_true", help="leave the docs as they are")
    args = parser.parse_args(argv)
    if any(step < 1 for step in args.steps) or args.steps[0] != 1:
        parser.error("--steps are whole numbers >= 1, starting with 1 (the reference)")
    args.out.mkdir(parents=True, exist_ok=True)
    write_typical(args.out / "typical", args.cache)
    sets = {"typical": args.out / "typical", **parse_sets(args.cases)}
    summaries, per_case = {}, {}
    with tempfile.TemporaryDirectory(dir=args.out) as scratch:
        for name, folder in sets.items():
            three_d = three_d_only(folder, Path(scratch) / name)
            if not any((three_d / "inputs").iterdir()):
                print(f"{name}: no 3D cases, left out", file=sys.stderr)
                continue
            per_case[name] = {}
            for step in args.steps:
                print(f"{name}: step {step} ...", file=sys.stderr)
                per_case[name][step] = measure_step(three_d, Path(scratch) / name / f"step{step}", args.model, step)
            summaries[name] = summarise(per_case[name])
    text = report(summaries, args.model)
    section = ("slice-step", "3D slice step: encoder calls against DSC and NSD")
    publish(args.out, "slice_step", text, {"summaries": summaries, "cases": per_case}, "benchmarks.slice_step", argv,
            None if args.no_docs else section, args.docs)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
