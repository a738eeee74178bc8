"""Compare LiteMedSAM and a distilled student: DSC/NSD per case, latency on one core, parameters.

`python -m training.compare --student PATH --cases NAME=DIR [--cases NAME=DIR ...] --out DIR`
Each DIR holds inputs/ and gts/. Cases are segmented with the inference CLI (torch
backend, one thread) and scored with the evaluation CLI; a Markdown report is
printed and written to OUT/compare.md. `--reuse` keeps segmentations already made.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from casefiles import load_arrays
from checkpoints.manifest import checkpoint_for
from common.atomic import write_atomic
from inference.build import build_model, parameter_counts
from inference.profiling import median_ms

TEACHER = "litemedsam"


@dataclass(frozen=True)
class Entry:
    """A model configuration with the weights to evaluate."""

    label: str
    config: str
    checkpoint: Path


def _read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as handle:
        return {row["case"]: row for row in csv.DictReader(handle)}


def score(seg: Path, gts: Path, csv_path: Path, per_label: Path | None = None) -> dict[str, dict[str, str]]:
    """Per-case DSC and NSD of a folder of predictions, by the evaluation CLI."""
    extra = [] if per_label is None else ["--per-label", str(per_label)]
    subprocess.run([
        sys.executable, "-m", "evaluation.metrics", "--seg", str(seg), "--gt", str(gts), "--csv", str(csv_path),
        "--quiet", *extra,
    ], check=True, stdout=subprocess.DEVNULL)
    return _read_csv(csv_path)


def run_inference(inputs: Path, segs: Path, *options: str) -> None:
    """`python -m inference -i INPUTS -o SEGS --no-progress OPTIONS` in a fresh process; fails if it fails."""
    subprocess.run([sys.executable, "-m", "inference", "-i", str(inputs), "-o", str(segs), "--no-progress", *options],
                   check=True)


def segment_and_score(entry: Entry, cases: Path, out: Path, reuse: bool) -> dict[str, dict[str, float]]:
    """Segment `cases/inputs` with the inference CLI and score against `cases/gts`; per case dsc, nsd, seconds."""
    seg, timings = out / "segs", out / "timings.csv"
    if not (reuse and timings.is_file()):
        run_inference(cases / "inputs", seg, "--model", entry.config, "--backend", "torch", "--checkpoint",
                      str(entry.checkpoint), "--threads", "1", "--timings", str(timings))
    seconds = _read_csv(timings)
    return {
        case: {"dsc": csv_score(row["dsc"]), "nsd": csv_score(row["nsd"]), "seconds": float(seconds[case]["seconds"])}
        for case, row in score(seg, cases / "gts", out / "metrics.csv").items()
    }


def agreement(teacher_segs: Path, student_segs: Path, cases: Path, out: Path) -> dict[str, float]:
    """DSC of the student's segmentation against the teacher's, averaged over the teacher's labels.

    Per label, not by the challenge's per-case rule: a box the teacher left empty
    would make the whole case NaN (and its NSD 0) there.
    """
    gts = out / "teacher_as_gts"
    gts.mkdir(parents=True, exist_ok=True)
    for seg in sorted(teacher_segs.glob("*.npz")):
        spacing = load_arrays(cases / "gts" / seg.name, ["gts"], ["spacing"]).get("spacing")
        extra = {} if spacing is None else {"spacing": spacing}
        np.savez_compressed(gts / seg.name, gts=load_arrays(seg, ["segs"])["segs"], **extra)
    per_label = out / "agreement_labels.csv"
    score(student_segs, gts, out / "agreement.csv", per_label)
    with per_label.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {case: mean([csv_score(r["dsc"]) for r in rows if r["case"] == case]) for case in {r["case"] for r in rows}}


def latency(entry: Entry, repeats: int) -> dict[str, float]:
    """Median milliseconds of one encoder pass and of one single-box decoder pass, on one thread."""
    torch.set_num_threads(1)
    model = build_model(entry.config, entry.checkpoint)
    image = torch.rand(1, 3, 256, 256)
    embedding = model.image_encoder(image)
    box = torch.tensor([[40.0, 50.0, 180.0, 200.0]])
    return {
        "encoder_ms": median_ms(lambda: model.image_encoder(image), repeats),
        "decoder_ms": median_ms(lambda: model.decode(embedding, box), repeats),
    }


def csv_score(text: str) -> float:
    """A CSV score; the evaluation writes an empty cell for NaN (a label absent from both masks)."""
    return float(text) if text else float("nan")


def mean(values: list[float]) -> float:
    """Mean over the cases that have a score."""
    scored = [v for v in values if v == v]
    return sum(scored) / len(scored) if scored else float("nan")


def report(entries: list[Entry], results: dict, agree: dict, timing: dict, counts: dict) -> str:
    """Markdown: per-case scores and seconds, means per case set, then model size and latency.

    The last column scores the student against the teacher's own segmentation.
    """
    head = "| set | case | " + " | ".join(f"{e.label} DSC | NSD | s" for e in entries) + " | DSC vs teacher |"
    lines = [head, "|" + " --- |" * (3 + 3 * len(entries))]
    for set_name in results[entries[0].label]:
        cases = results[entries[0].label][set_name]
        for case in sorted(cases):
            cells = []
            for e in entries:
                r = results[e.label][set_name][case]
                cells.append(f"{100 * r['dsc']:.2f} | {100 * r['nsd']:.2f} | {r['seconds']:.1f}")
            cells.append(f"{100 * agree[set_name][case]:.2f}")
            lines.append(f"| {set_name} | {case.removesuffix('.npz')} | " + " | ".join(cells) + " |")
        means = []
        for e in entries:
            rows = list(results[e.label][set_name].values())
            means.append(" | ".join(f"{v:.2f}" for v in (
                100 * mean([r["dsc"] for r in rows]), 100 * mean([r["nsd"] for r in rows]),
                mean([r["seconds"] for r in rows]))))
        means.append(f"{100 * mean(list(agree[set_name].values())):.2f}")
        lines.append(f"| {set_name} | **mean** | " + " | ".join(means) + " |")
    base = timing[entries[0].label]["encoder_ms"]
    lines += ["", "| model | encoder params | decoder params | total params | encoder ms (1 thread) | "
              "decoder ms (1 box) | encoder speed-up |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for e in entries:
        c, t = counts[e.label], timing[e.label]
        lines.append(f"| {e.label} | {c['image_encoder']:,} | {c['mask_decoder']:,} | {c['total']:,} | "
                     f"{t['encoder_ms']:.0f} | {t['decoder_ms']:.1f} | {base / t['encoder_ms']:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", type=Path, required=True, help="distilled state dict")
    parser.add_argument("--student-model", default="swiftmedsam-v2")
    parser.add_argument("--teacher", type=Path, help="LiteMedSAM weights (default: the manifest's)")
    parser.add_argument("--cases", action="append", required=True, metavar="NAME=DIR",
                        help="case set: DIR/inputs and DIR/gts; repeatable")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--reuse", action="store_true", help="keep segmentations already in OUT")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per latency figure")
    args = parser.parse_args(argv)
    entries = [
        Entry("LiteMedSAM", TEACHER, args.teacher or checkpoint_for(TEACHER).path),
        Entry(args.student_model, args.student_model, args.student),
    ]
    sets = dict(item.split("=", 1) for item in args.cases)
    results = {
        e.label: {name: segment_and_score(e, Path(folder), args.out / e.config / name, args.reuse)
                  for name, folder in sets.items()}
        for e in entries
    }
    teacher, student = (args.out / e.config for e in entries)
    agree = {name: agreement(teacher / name / "segs", student / name / "segs", Path(folder), student / name)
             for name, folder in sets.items()}
    timing = {e.label: latency(e, args.repeats) for e in entries}
    counts = {e.label: parameter_counts(build_model(e.config)) for e in entries}
    text = report(entries, results, agree, timing, counts)
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "compare.md", text + "\n")
    print(text)


if __name__ == "__main__":
    main()
