"""The runtime CSV: `case,seconds,peak_mb,ok`; `case,seconds[,ok]` (python -m inference --timings) reads too."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from common.atomic import atomic_file
from evaluation.csvfiles import csv_number, read_csv_rows

RUNTIME_HEADER = ("case", "seconds", "peak_mb", "ok")


@dataclass(frozen=True)
class Timing:
    """Runtime of one case; `peak_mb` is NaN and `ok` None where the source lacks them."""

    seconds: float
    peak_mb: float = math.nan
    ok: bool | None = None


def write_runtime(path: Path, rows: Iterable[tuple[str, Timing]]) -> None:
    """Write `case,seconds,peak_mb,ok` rows."""
    with atomic_file(path, text=True) as handle:
        writer = csv.writer(handle)
        writer.writerow(RUNTIME_HEADER)
        for case, timing in rows:
            peak = "" if math.isnan(timing.peak_mb) else f"{timing.peak_mb:.1f}"
            ok = "" if timing.ok is None else str(timing.ok).lower()
            writer.writerow((case, f"{timing.seconds:.3f}", peak, ok))


def read_runtime(path: Path) -> dict[str, Timing]:
    """`case -> Timing` from `case,seconds[,ok]` (inference --timings) or `case,seconds,peak_mb,ok`."""
    rows = read_csv_rows(path, ("case", "seconds"))
    return {
        row["case"]: Timing(
            seconds=csv_number(row["seconds"], path, "seconds"),
            peak_mb=csv_number(row.get("peak_mb"), path, "peak_mb"),
            ok=_flag(row.get("ok"), path),
        )
        for row in rows
    }


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
