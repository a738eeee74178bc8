"""The leaderboard: metrics joined with runtimes, per case and per modality, as Markdown, CSV and printout."""

from __future__ import annotations

import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, TextIO

import numpy as np

from casefiles import modality
from common.atomic import atomic_file
from evaluation.runtime.table import Timing

OVERALL = "Overall"


@dataclass(frozen=True)
class CaseRow:
    """One case: scores and, where a runtime source has it, seconds and peak memory."""

    case: str
    modality: str
    dsc: float
    nsd: float
    seconds: float = math.nan
    peak_mb: float = math.nan


@dataclass(frozen=True)
class GroupRow:
    """Means over the cases of one modality (or all cases); NaN values are left out."""

    name: str
    cases: int
    dsc: float
    nsd: float
    seconds: float


def join(metrics: Mapping[str, tuple[float, float]], runtime: Mapping[str, Timing] | None = None) -> list[CaseRow]:
    """One row per scored case, sorted by name; runtime rows of unscored cases are dropped."""
    runtime = runtime or {}
    rows = []
    for case in sorted(metrics):
        dsc, nsd = metrics[case]
        timing = runtime.get(case, Timing(math.nan))
        rows.append(CaseRow(case, modality(case), dsc, nsd, timing.seconds, timing.peak_mb))
    return rows


def _mean(values: Iterable[float]) -> float:
    """Mean of the non-NaN values; NaN if there are none."""
    kept = [v for v in values if not math.isnan(v)]
    return float(np.mean(kept)) if kept else math.nan


def _group(name: str, rows: list[CaseRow]) -> GroupRow:
    """Means of a group of cases."""
    return GroupRow(
        name,
        len(rows),
        _mean(r.dsc for r in rows),
        _mean(r.nsd for r in rows),
        _mean(r.seconds for r in rows),
    )


def aggregate(rows: list[CaseRow]) -> list[GroupRow]:
    """One row per modality (sorted) and a last row over all cases."""
    if not rows:
        raise ValueError("no cases to summarise")
    names = sorted({r.modality for r in rows})
    groups = [_group(name, [r for r in rows if r.modality == name]) for name in names]
    return groups + [_group(OVERALL, rows)]


def _percent(value: float) -> str:
    """A score in percent with two decimals, like the published leaderboard."""
    return "n/a" if math.isnan(value) else f"{100 * value:.2f}"


def _seconds(value: float) -> str:
    """Seconds with two decimals."""
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def _markdown(header: tuple[str, ...], body: list[tuple[str, ...]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def leaderboard_markdown(groups: list[GroupRow]) -> str:
    """The leaderboard table: mean DSC and NSD (%) and seconds per case, per modality and overall."""
    body = [
        (f"**{g.name}**" if g.name == OVERALL else g.name, str(g.cases), _percent(g.dsc), _percent(g.nsd), _seconds(g.seconds))
        for g in groups
    ]
    return _markdown(("Modality", "Cases", "DSC (%)", "NSD (%)", "Seconds"), body)


def cases_markdown(rows: list[CaseRow]) -> str:
    """Per-case table: DSC and NSD (%), seconds and peak memory."""
    body = [
        (r.case, r.modality, _percent(r.dsc), _percent(r.nsd), _seconds(r.seconds),
         "n/a" if math.isnan(r.peak_mb) else f"{r.peak_mb:.0f}")
        for r in rows
    ]
    return _markdown(("Case", "Modality", "DSC (%)", "NSD (%)", "Seconds", "Peak MB"), body)


def write_leaderboard_csv(path: Path, groups: list[GroupRow]) -> None:
    """Write `modality,cases,dsc,nsd,seconds` (scores as fractions, 4 decimals)."""
    with atomic_file(path, text=True) as handle:
        writer = csv.writer(handle)
        writer.writerow(("modality", "cases", "dsc", "nsd", "seconds"))
        for g in groups:
            writer.writerow((g.name, g.cases, *(("" if math.isnan(v) else f"{v:.4f}") for v in (g.dsc, g.nsd, g.seconds))))


def write_cases_csv(path: Path, rows: list[CaseRow]) -> None:
    """Write the joined per-case table `case,modality,dsc,nsd,seconds,peak_mb`."""
    with atomic_file(path, text=True) as handle:
        writer = csv.writer(handle)
        writer.writerow(("case", "modality", "dsc", "nsd", "seconds", "peak_mb"))
        for r in rows:
            writer.writerow((r.case, r.modality, *(("" if math.isnan(v) else repr(v)) for v in (r.dsc, r.nsd, r.seconds, r.peak_mb))))


def print_leaderboard(rows: list[CaseRow], out: TextIO | None = None, per_case: bool = True) -> None:
    """Print the per-case table (unless `per_case` is False), then the per-modality leaderboard."""
    out = out or sys.stdout
    nan_cases = sum(math.isnan(r.dsc) for r in rows)
    untimed = sum(math.isnan(r.seconds) for r in rows)
    if per_case:
        print(cases_markdown(rows), file=out)
        print(file=out)
    print(leaderboard_markdown(aggregate(rows)), file=out)
    if nan_cases:
        print(f"\n{nan_cases} case(s) with NaN DSC (a label absent from both masks) are left out of the means.", file=out)
    # All cases untimed just means no runtime source was given.
    if 0 < untimed < len(rows):
        print(f"{untimed} case(s) have no runtime and are left out of the seconds.", file=out)
