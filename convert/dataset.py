"""A folder of scans (and label images or box files paired by name) to `imgs/`, `gts/` and `sources.csv`."""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path

from common.atomic import write_atomic
from convert.case import ConvertOptions, prepare_case
from convert.errors import ConvertError
from convert.naming import case_id
from convert.writers import write_case

LOG = logging.getLogger("convert")
# nnU-Net names the images of a case `<case>_0000.nii.gz` and its labels `<case>.nii.gz`.
CHANNEL_SUFFIX = re.compile(r"-\d{4}$")
CSV_COLUMNS = ("case", "source", "shape", "spacing", "objects")


@dataclass(frozen=True)
class SourceFiles:
    """One scan of the folder and its label image or box file."""

    image: Path
    labels: Path | None
    boxes: Path | None


def entries(folder: Path) -> list[Path]:
    """The files and sub-folders (DICOM series) of a folder, hidden ones left out, sorted by name."""
    if not Path(folder).is_dir():
        raise ConvertError(folder, "not a folder")
    return sorted(p for p in Path(folder).iterdir() if not p.name.startswith("."))


def pair(images: Path, labels: Path | None, boxes: Path | None) -> list[SourceFiles]:
    """Each scan with the label image (or box file) of the same name; a scan without one gets None."""
    label_files = {case_id(p): p for p in entries(labels)} if labels else {}
    box_files = {case_id(p): p for p in entries(boxes)} if boxes else {}
    paired = []
    for image in entries(images):
        key = case_id(image)
        keys = [key, CHANNEL_SUFFIX.sub("", key)]
        paired.append(SourceFiles(image, next((label_files[k] for k in keys if k in label_files), None),
                                  next((box_files[k] for k in keys if k in box_files), None)))
    return paired


def convert_dataset(images: Path, labels: Path | None, boxes: Path | None, options: ConvertOptions, out: Path,
                    progress: bool = True) -> int:
    """Convert every scan of `images`; a bad one is logged with its problem and skipped. 0 if all converted, else 1."""
    from tqdm import tqdm

    sources = pair(images, labels, boxes)
    rows: list[dict[str, str]] = []
    failed = 0
    for source in tqdm(sources, unit="scan", disable=not progress):
        try:
            if source.labels is None and source.boxes is None:
                raise ConvertError(source.image, "no label image or box file of the same name")
            case = prepare_case(source.image, source.labels, source.boxes, replace(options, name=None))
            if any(row["case"] == case.name for row in rows):
                raise ConvertError(source.image, f"case {case.name} exists already: rename one of its sources")
            write_case(case, out)
        except ConvertError as err:
            LOG.error("FAILED %s", err)
            failed += 1
            continue
        rows.append({"case": case.name, "source": str(source.image), "shape": "x".join(map(str, case.imgs.shape)),
                     "spacing": "" if case.spacing is None else " ".join(str(float(v)) for v in case.spacing),
                     "objects": str(len(case.boxes))})
    text = io.StringIO()
    writer = csv.DictWriter(text, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(Path(out) / "sources.csv", text.getvalue())
    LOG.info("%d case(s) written to %s, %d failed", len(rows), out, failed)
    return 1 if failed else 0
