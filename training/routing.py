"""Which model for which modality, from measurements: `python -m training.routing --cases NAME=DIR ... --out DIR`.

Every shipped model (each configuration with a checkpoint in the manifest) segments
each case set (DIR/inputs, scored against DIR/gts) with the inference CLI at its
default backend and precision, one thread; the evaluation CLI scores it. Cases are
grouped by the modality in their names. A modality is routed to another model than
the fallback (LiteMedSAM) only where that model's mean DSC over the modality's cases
is higher: give only cases no model was trained on (the held-out split of
`python -m training.images`, the demo cases). Writes OUT/routing.md, the per-modality
table and the proposed routing; `--docs FILE` also writes it there, and `--write`
makes it the routing of `--model auto` (inference/routing.json).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from casefiles import discover_cases, modality
from checkpoints.manifest import checkpoints
from common.atomic import write_atomic
from inference.routing import ROUTING_PATH, Measured, write_routing
from training.compare import TEACHER, csv_score, mean, run_inference, score

DOCS = Path(__file__).resolve().parents[1] / "docs" / "routing.md"


@dataclass(frozen=True)
class CaseScore:
    """One case's scores with one model."""

    case_set: str
    case: str
    dsc: float
    nsd: float


def shipped_models() -> list[str]:
    """The configurations the manifest has weights for, the fallback (LiteMedSAM) first."""
    configs = {entry.config for entry in checkpoints().values()}
    return [TEACHER, *sorted(configs - {TEACHER})]


def segment_and_score(model: str, cases: Path, out: Path, threads: int, reuse: bool) -> dict[str, tuple[float, float]]:
    """`model` on `cases/inputs` with the inference CLI, scored against `cases/gts`: case -> (DSC, NSD)."""
    segs = out / "segs"
    expected = {path.name for path in discover_cases(cases / "inputs")}
    if not (reuse and segs.is_dir() and expected <= {path.name for path in discover_cases(segs)}):
        run_inference(cases / "inputs", segs, "--model", model, "--threads", str(threads))
    rows = score(segs, cases / "gts", out / "metrics.csv")
    return {case: (csv_score(row["dsc"]), csv_score(row["nsd"])) for case, row in rows.items()}


def by_modality(scores: dict[str, list[CaseScore]]) -> dict[str, Measured]:
    """Per modality (sorted): how many cases, and each model's mean DSC and NSD over them."""
    first = next(iter(scores.values()))
    names = sorted({modality(s.case) for s in first})
    table = {}
    for name in names:
        cases = {(s.case_set, s.case) for s in first if modality(s.case) == name}
        dsc = {m: round(mean([s.dsc for s in rows if (s.case_set, s.case) in cases]), 4) for m, rows in scores.items()}
        nsd = {m: round(mean([s.nsd for s in rows if (s.case_set, s.case) in cases]), 4) for m, rows in scores.items()}
        table[name] = Measured(model=max(dsc, key=lambda m: (dsc[m], m == TEACHER)), cases=len(cases), dsc=dsc,
                               nsd=nsd, case_sets=sorted({case_set for case_set, _ in cases}))
    return table


def by_case_set(scores: dict[str, list[CaseScore]], table: dict[str, Measured]) -> dict[str, dict[str, tuple]]:
    """Per case set: each model's and the proposed routing's mean (DSC, NSD) over the set's cases."""
    routed = {(s.case_set, s.case): table[modality(s.case)].model for s in next(iter(scores.values()))}
    rows_of = {**scores, "auto": [s for model, rows in scores.items() for s in rows
                                  if routed[(s.case_set, s.case)] == model]}
    sets = sorted({s.case_set for s in next(iter(scores.values()))})
    return {case_set: {name: (mean([s.dsc for s in rows if s.case_set == case_set]),
                              mean([s.nsd for s in rows if s.case_set == case_set]))
                       for name, rows in rows_of.items()}
            for case_set in sets}


def report(table: dict[str, Measured], models: list[str], command: str,
           sets: dict[str, dict[str, tuple]] | None = None) -> str:
    """Markdown: per modality the cases, each model's DSC / NSD (%), and the model routed to."""
    lines = ["# Routing of `--model auto`", "", f"Measured by `{command}`.", "",
             f"A modality goes to another model than {TEACHER} only where that model's mean DSC over the",
             f"modality's cases is higher; modalities not listed go to the fallback, {TEACHER}. DSC and NSD in %,",
             "each the mean over the cases of the challenge's per-case scores (`python -m evaluation.metrics`).",
             "The cases are ones no model was trained on.", "",
             "| modality | cases (sets) | " + " | ".join(f"{m} DSC / NSD" for m in models) + " | routed to |",
             "| --- | --- | " + " | ".join("---" for _ in models) + " | --- |"]
    for name, measured in table.items():
        cells = [f"{100 * measured.dsc[m]:.2f} / {100 * measured.nsd[m]:.2f}" for m in models]
        lines.append(f"| {name} | {measured.cases} ({', '.join(measured.case_sets)}) | " + " | ".join(cells)
                     + f" | {measured.model} |")
    if sets:
        lines += ["", "End to end, each model alone and `auto` with this routing (mean DSC / NSD over each set):", "",
                  "| case set | " + " | ".join(f"{name}" for name in [*models, "auto"]) + " |",
                  "| --- | " + " | ".join("---" for _ in [*models, "auto"]) + " |"]
        for case_set, means in sets.items():
            lines.append(f"| {case_set} | " + " | ".join(
                f"{100 * means[name][0]:.2f} / {100 * means[name][1]:.2f}" for name in [*models, "auto"]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Measure, print and write the table; with --write, the routing."""
    parser = argparse.ArgumentParser(prog="python -m training.routing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", action="append", required=True, metavar="NAME=DIR",
                        help="case set never trained on: DIR/inputs and DIR/gts; repeatable")
    parser.add_argument("--out", type=Path, required=True, help="segmentations, scores and routing.md")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="keep segmentations already in OUT")
    parser.add_argument("--docs", type=Path, help=f"also write the table here (e.g. {DOCS.relative_to(DOCS.parents[1])})")
    parser.add_argument("--write", action="store_true", help=f"make the proposal the routing ({ROUTING_PATH.name})")
    args = parser.parse_args(argv)
    sets = dict(item.split("=", 1) for item in args.cases)
    models = shipped_models()
    scores = {
        model: [CaseScore(name, case, dsc, nsd)
                for name, folder in sets.items()
                for case, (dsc, nsd) in segment_and_score(model, Path(folder), args.out / model / name,
                                                           args.threads, args.reuse).items()]
        for model in models
    }
    table = by_modality(scores)
    command = "python -m training.routing " + " ".join(f"--cases {item}" for item in args.cases)
    text = report(table, models, command, by_case_set(scores, table))
    write_atomic(args.out / "routing.md", text)
    if args.docs:
        write_atomic(args.docs, text)
    if args.write:
        write_routing(TEACHER, table, command)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
