"""Reading the evaluation's CSV files: required columns and number fields, with clear errors."""

from __future__ import annotations

import csv
import math
from pathlib import Path


def read_csv_rows(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a CSV file that must have the `required` columns; ValueError names what is wrong."""
    if not path.is_file():
        raise ValueError(f"no such CSV file: {path}")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in required if name not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        return list(reader)


def csv_number(text: str | None, path: Path, column: str) -> float:
    """A CSV float field; empty means NaN (as pandas writes NaN)."""
    if text is None or text.strip() == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{path}: column {column} has a non-number {text!r}") from None
