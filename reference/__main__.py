"""The baseline algorithm as it is: `python -m reference -i IN -o OUT [--threads 1]`.

Torch eager LiteMedSAM; in 3D every slice is encoded again for every box that
visits it; one box per decoder call, with the SAM mask decoder's own arithmetic
(the 64x64 side projected in every attention, the upscaling as transposed
convolutions, all four masks); the baseline's propagation boxes. It is the
reference the benchmark times our default path against, and whose masks it compares.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from casefiles import discover_cases
from checkpoints.manifest import checkpoint_for
from inference.build import build_model
from inference.outputs import write_segmentation
from inference.predictor import BoxPredictor
from reference.baseline import segment
from reference.decoder import SamFormBackend


def main(argv: list[str] | None = None) -> int:
    """Segment every case of the input folder."""
    parser = argparse.ArgumentParser(prog="python -m reference", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--input", type=Path, required=True)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    model = build_model("litemedsam", checkpoint_for("litemedsam").path)
    predictor = BoxPredictor(SamFormBackend(model, args.threads), model.config.input_size, decode_batch=1)
    for path in discover_cases(args.input):
        name, label_map = segment(predictor, path)
        write_segmentation(args.output, name, label_map)
    return 0


if __name__ == "__main__":
    sys.exit(main())
