"""Scan and boxes (or labels) to a mask file in one step: convert, `python -m inference`, convert back."""

from __future__ import annotations

import tempfile
from pathlib import Path

from convert.case import ConvertOptions, prepare_case
from convert.errors import ConvertError
from convert.restore import label_image, read_segs
from convert.writers import case_paths, check_image_output, write_case, write_image
from inference.__main__ import main as run_inference


def segment_scan(source: Path, labels: Path | None, boxes_file: Path | None, out: Path, options: ConvertOptions,
                 inference_options: list[str], source_labels: bool = False) -> Path:
    """Segment a scan with the inference CLI (`inference_options` are its model, backend, ... options); write `out`.

    The case and its segmentation live in a temporary folder; only `out` is written.
    """
    check_image_output(out)
    with tempfile.TemporaryDirectory(prefix="convert-segment-") as work:
        case = prepare_case(source, labels, boxes_file, options)
        paths = case_paths(Path(work) / "case", case.name)
        write_case(case, Path(work) / "case")
        outputs = Path(work) / "segs"
        status = run_inference(["-i", str(paths["imgs"].parent), "-o", str(outputs), "--no-progress",
                                *inference_options])
        if status != 0:
            raise ConvertError(source, f"inference failed (exit status {status}; its log says why)")
        segs_path = outputs / paths["imgs"].name
        image = label_image(read_segs(segs_path), case.sidecar.geometry, case.sidecar, source_labels, segs_path)
        return write_image(image, out)
