"""The machine-readable record of a run: one row per case (case, status, seconds, error), as JSON or CSV.

The JSON form adds the counts per status, what stopped the run and, for a parallel
run, one entry per worker process: its cases and its peak RSS.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

from common.atomic import write_atomic
from inference.pipeline import CaseOutcome

RECORD_FIELDS = ("case", "status", "seconds", "error", "warnings", "model", "worker", "rescheduled")


def record_rows(outcomes: list[CaseOutcome]) -> list[dict[str, object]]:
    """One dict per case in RECORD_FIELDS order."""
    return [
        {"case": o.name, "status": o.status.value, "seconds": round(o.seconds, 4), "error": o.error,
         "warnings": list(o.warnings), "model": o.model, "worker": o.worker, "rescheduled": o.rescheduled}
        for o in outcomes
    ]


def worker_rows(outcomes: list[CaseOutcome]) -> list[dict[str, object]]:
    """One dict per worker process that reported cases: its name, the cases it ended, its peak RSS in MB."""
    workers: dict[str, dict[str, object]] = {}
    for o in outcomes:
        if o.worker is None:
            continue
        row = workers.setdefault(o.worker, {"worker": o.worker, "cases": 0, "peak_rss_mb": None})
        row["cases"] += 1
        if o.peak_rss_mb is not None:
            row["peak_rss_mb"] = round(max(o.peak_rss_mb, row["peak_rss_mb"] or 0.0), 1)
    return list(workers.values())


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
                             "model": row["model"] or "", "worker": row["worker"] or ""})
        text = buffer.getvalue()
    else:
        counts = Counter(o.status.value for o in outcomes)
        text = json.dumps({"seconds": round(seconds, 3), "stopped_by": stopped_by, "counts": dict(counts),
                           "workers": worker_rows(outcomes), "cases": rows}, indent=1) + "\n"
    return write_atomic(path, text)
