"""The metrics CSVs: `case,dsc,nsd` (the organisers' columns) and `case,label,dsc,nsd`."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np

from common.atomic import atomic_file
from evaluation.csvfiles import csv_number, read_csv_rows

if TYPE_CHECKING:
    from evaluation.metrics.folder import CaseScore

METRICS_HEADER = ("case", "dsc", "nsd")
LABELS_HEADER = ("case", "label", "dsc", "nsd")


def format_score(value: float, digits: int | None = 4) -> str:
    """A score as the organisers' CSV writes it: np.round to `digits`, NaN as an empty field."""
    if math.isnan(value):
        return ""
    return repr(float(np.round(value, digits) if digits is not None else value))


def write_metrics(path: Path, scores: Iterable[CaseScore], digits: int | None = 4) -> None:
    """Write `case,dsc,nsd` rows; `digits` None keeps full precision."""
    with atomic_file(path, text=True) as handle:
        writer = csv.writer(handle)
        writer.writerow(METRICS_HEADER)
        for score in scores:
            writer.writerow((score.case, format_score(score.dsc, digits), format_score(score.nsd, digits)))


def write_label_metrics(path: Path, scores: Iterable[CaseScore], digits: int | None = 4) -> None:
    """Write `case,label,dsc,nsd` rows, one per label 1..max(gts) of each case."""
    with atomic_file(path, text=True) as handle:
        writer = csv.writer(handle)
        writer.writerow(LABELS_HEADER)
        for score in scores:
            for label, (dsc, nsd) in enumerate(zip(score.label_dsc, score.label_nsd), start=1):
                writer.writerow((score.case, label, format_score(dsc, digits), format_score(nsd, digits)))


def read_metrics(path: Path) -> dict[str, tuple[float, float]]:
    """`case -> (dsc, nsd)` from a metrics CSV (ours or the organisers'); empty fields are NaN."""
    rows = read_csv_rows(path, METRICS_HEADER)
    return {row["case"]: (csv_number(row["dsc"], path, "dsc"), csv_number(row["nsd"], path, "nsd")) for row in rows}
