"""The machine-readable record of a run: one row per case (case, status, seconds, error), as JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

from common.atomic import write_atomic
from inference.pipeline import CaseOutcome

RECORD_FIELDS = ("case", "status", "seconds", "error", "warnings", "model")


def record_rows(outcomes: list[CaseOutcome]) -> list[dict[str, object]]:
    """One dict per case in RECORD_FIELDS order."""
    return [
        {"case": o.name, "status": o.status.value, "seconds": round(o.seconds, 4), "error": o.error,
         "warnings": list(o.warnings), "model": o.model}
        for o in outcomes
    ]


def write_record(path: Path, outcomes: list[CaseOutcome], seconds: float, stopped_by: str | None) -> Path:
    """Write the record atomically: CSV if `path` ends in .csv, else JSON with the counts and what stopped the run."""
    path = Path(path)
    rows = record_rows(outcomes)
    if path.suffix == ".csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=RECORD_FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "error": row["error"] or "", "warnings": " | ".join(row["warnings"]),
                             "model": row["model"] or ""})
        text = buffer.getvalue()
    else:
        counts = Counter(o.status.value for o in outcomes)
        text = json.dumps({"seconds": round(seconds, 3), "stopped_by": stopped_by, "counts": dict(counts),
                           "cases": rows}, indent=1) + "\n"
    return write_atomic(path, text)
