"""CSV files of the evaluation: metrics, per-label metrics and runtimes."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from evaluation.scoring import CaseResult

METRICS_HEADER = ("case", "dsc", "nsd")
LABELS_HEADER = ("case", "label", "dsc", "nsd")
RUNTIME_HEADER = ("case", "seconds", "peak_mb", "ok")


@dataclass(frozen=True)
class Timing:
    """Runtime of one case; `peak_mb` is NaN and `ok` None where the source lacks them."""

    seconds: float
    peak_mb: float = math.nan
    ok: bool | None = None


def format_score(value: float, digits: int | None = 4) -> str:
    """A score as the organisers' CSV writes it: np.round to `digits`, NaN as an empty field."""
    if math.isnan(value):
        return ""
    return repr(float(np.round(value, digits) if digits is not None else value))


def write_metrics(path: Path, results: Iterable[CaseResult], digits: int | None = 4) -> None:
    """Write `case,dsc,nsd` rows; `digits` None keeps full precision."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(METRICS_HEADER)
        for result in results:
            writer.writerow((result.case, format_score(result.dsc, digits), format_score(result.nsd, digits)))


def write_label_metrics(path: Path, results: Iterable[CaseResult], digits: int | None = 4) -> None:
    """Write `case,label,dsc,nsd` rows, one per label 1..max(gts) of each case."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(LABELS_HEADER)
        for result in results:
            for label, (dsc, nsd) in enumerate(zip(result.label_dsc, result.label_nsd), start=1):
                writer.writerow((result.case, label, format_score(dsc, digits), format_score(nsd, digits)))


def write_runtime(path: Path, rows: Iterable[tuple[str, Timing]]) -> None:
    """Write `case,seconds,peak_mb,ok` rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(RUNTIME_HEADER)
        for case, timing in rows:
            peak = "" if math.isnan(timing.peak_mb) else f"{timing.peak_mb:.1f}"
            ok = "" if timing.ok is None else str(timing.ok).lower()
            writer.writerow((case, f"{timing.seconds:.3f}", peak, ok))


def _read_rows(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a CSV file that must have the `required` columns."""
    if not path.is_file():
        raise ValueError(f"no such CSV file: {path}")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in required if name not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        return list(reader)


def _number(text: str | None, path: Path, column: str) -> float:
    """A CSV float field; empty means NaN (as pandas writes NaN)."""
    if text is None or text.strip() == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{path}: column {column} has a non-number {text!r}") from None


def read_metrics(path: Path) -> dict[str, tuple[float, float]]:
    """`case -> (dsc, nsd)` from a metrics CSV (ours or the organisers')."""
    rows = _read_rows(path, METRICS_HEADER)
    return {row["case"]: (_number(row["dsc"], path, "dsc"), _number(row["nsd"], path, "nsd")) for row in rows}


def _flag(text: str | None, path: Path) -> bool | None:
    """An `ok` field: true/false/1/0, empty for unknown."""
    value = (text or "").strip().lower()
    if value == "":
        return None
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise ValueError(f"{path}: column ok has {text!r}, expected true or false")


def read_runtime(path: Path) -> dict[str, Timing]:
    """`case -> Timing` from `case,seconds` (inference --timings) or `case,seconds,peak_mb,ok`."""
    rows = _read_rows(path, ("case", "seconds"))
    return {
        row["case"]: Timing(
            seconds=_number(row["seconds"], path, "seconds"),
            peak_mb=_number(row.get("peak_mb"), path, "peak_mb"),
            ok=_flag(row.get("ok"), path),
        )
        for row in rows
    }
