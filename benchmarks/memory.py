"""Peak memory on real-size cases, each a fresh process on one thread: `python -m benchmarks.memory`.

The cases are demo.large_cases': a 300 x 512 x 512 brain MR volume with six boxes
around real structures (more slice embeddings kept between the sweeps than the
slice cache's budget holds) and a 2048 x 2048 nuclei image with 300 real boxes; and
demo.typical_cases' atlas-style case, the 181 x 217 x 181 brain with twelve structure
boxes, whose target is the typical cases' 600 MB.

For each: `python -m inference -i DIR -o OUT --threads 1 --no-progress` (OpenVINO f32),
its peak RSS (the child's max RSS), seconds and encoder calls (from --profile).
On a shared machine only the peak RSS is comparable between runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmarks.docs import DOCS, publish
from casefiles import is_3d
from demo.large_cases import QUICK_DEPTH, VOLUME_SHAPE, LargeCase, build_cases
from demo.typical_cases import atlas_case
from evaluation.runtime.harness import run_local
from inference.profiling import read_profile
from inference.segment3d import sweep_slices
from inference.slice_cache import CACHE_BYTES

TARGET_PEAK_MB = 1024.0
TARGET_ATLAS_PEAK_MB = 600.0
# LiteMedSAM's image embedding: 256 x 64 x 64 float32.
EMBEDDING_BYTES = 256 * 64 * 64 * 4


def measure(case: LargeCase, folder: Path, python: str, target_mb: float) -> dict:
    """Run the default path on one case in a fresh process; its peak RSS, seconds and encoder work."""
    path = case.write(folder / "inputs")
    profile = folder / "profiles" / f"{path.stem}.json"
    run = run_local(path, f"{python} -m inference -i {{inputs}} -o {{outputs}} --threads 1 --no-progress "
                          f"--profile {profile}")
    if not run.timing.ok:
        raise RuntimeError(f"{case.name}: the run failed ({run.message})")
    [record] = read_profile(profile).cases
    if is_3d(case.name):
        upward, downward = sweep_slices(case.boxes, len(case.image))
        visited, kept = int((upward | downward).sum()), int((upward & downward).sum())
    else:
        visited, kept = 1, 0
    encoded = record.calls.encoder.calls
    return {
        "case": case.name, "shape": list(case.image.shape), "boxes": len(case.boxes),
        "peak_mb": run.timing.peak_mb, "seconds": run.timing.seconds,
        "encoder_calls": encoded, "slices": visited, "reencoded": encoded - visited,
        "kept_between_sweeps": kept,
        "decoder_calls": record.calls.decoder.calls, "target_mb": target_mb,
    }


def report(rows: list[dict]) -> str:
    """Markdown table of the runs and the peak-RSS target."""
    budget = CACHE_BYTES / 2**20
    lines = [f"Slice-embedding cache budget: {budget:.0f} MiB ({CACHE_BYTES // EMBEDDING_BYTES} embeddings)", "",
             "| case | shape | boxes | peak RSS MB (target) | seconds | encoder calls | re-encoded | "
             "embeddings kept between sweeps, unbounded (MiB) | decoder calls |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        kept_mib = r["kept_between_sweeps"] * EMBEDDING_BYTES / 2**20
        lines.append(f"| {r['case']} | {'x'.join(map(str, r['shape']))} | {r['boxes']} | {r['peak_mb']:.0f} ({r['target_mb']:.0f}) | "
                     f"{r['seconds']:.1f} | {r['encoder_calls']} | {r['reencoded']} | "
                     f"{r['kept_between_sweeps']} ({kept_mib:.0f}) | {r['decoder_calls']} |")
    met = "yes" if all(r["peak_mb"] <= r["target_mb"] for r in rows) else "no"
    lines += ["", f"Peak RSS within each case's target: {met}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Build the cases, run each, print the table and save it (with JSON) under --out."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/memory"))
    parser.add_argument("--quick", action="store_true",
                        help=f"a {QUICK_DEPTH}-slice volume instead of {VOLUME_SHAPE[0]}, without the atlas case (a smoke test)")
    parser.add_argument("--docs", type=Path, default=DOCS, help="the Markdown file whose memory section is replaced")
    parser.add_argument("--no-docs", action="store_true", help="leave the docs as they are")
    args = parser.parse_args(argv)
    depth = QUICK_DEPTH if args.quick else VOLUME_SHAPE[0]
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out) as scratch:
        targets = [(case, TARGET_PEAK_MB) for case in build_cases(depth)]
        if not args.quick:
            targets.append((atlas_case(), TARGET_ATLAS_PEAK_MB))
        rows = [measure(case, Path(scratch) / case.name.removesuffix(".npz"), sys.executable, target)
                for case, target in targets]
    text = report(rows)
    publish(args.out, "memory", text, {"cache_bytes": CACHE_BYTES, "cases": rows}, "benchmarks.memory", argv,
            None if args.no_docs or args.quick else ("memory", "Peak memory on real-size cases"), args.docs)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
