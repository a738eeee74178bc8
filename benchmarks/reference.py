"""The baseline algorithm as it is: `python -m benchmarks.reference -i IN -o OUT [--threads 1]`.

Torch eager LiteMedSAM; in 3D every slice is encoded again for every box that
visits it; one box per decoder call; the baseline's propagation boxes. It is the
reference the benchmark times our default path against, and whose masks it compares.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from casefiles import discover_cases
from checkpoints.manifest import checkpoint_for
from inference.backends import TorchBackend
from inference.build import build_model
from inference.io import load_case, new_label_map, paint, write_segmentation
from inference.predictor import BoxPredictor, ImageEmbedding, segment_image
from inference.propagation import Propagation
from inference.volume import segment_volume_by_box


class EncodeEveryTime:
    """Slice embeddings as the baseline had them: computed again on every request, never kept."""

    def __init__(self, predictor: BoxPredictor, volume: np.ndarray) -> None:
        self._predictor = predictor
        self._volume = volume

    def get(self, z: int) -> ImageEmbedding:
        """Encode slice z."""
        return self._predictor.embed(self._volume[z])

    def release(self, slices: Iterable[int]) -> None:
        """Nothing is kept, so nothing to free."""


def segment(predictor: BoxPredictor, path: Path) -> tuple[str, np.ndarray]:
    """The case's name and its label map, computed the baseline's way."""
    case = load_case(path)
    labels = new_label_map(case)
    if case.is_3d:
        slices = EncodeEveryTime(predictor, case.image)
        for index, z, mask in segment_volume_by_box(predictor, case.image, case.boxes, Propagation.BASELINE, slices):
            paint(labels[z], mask, int(case.labels[index]))
    else:
        for label, mask in zip(case.labels, segment_image(predictor, case.image, case.boxes)):
            paint(labels, mask, int(label))
    return case.name, labels


def main(argv: list[str] | None = None) -> int:
    """Segment every case of the input folder."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reference", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--input", type=Path, required=True)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    model = build_model("litemedsam", checkpoint_for("litemedsam").path)
    predictor = BoxPredictor(TorchBackend(model, args.threads), model.config.image_size, decode_batch=1)
    for path in discover_cases(args.input):
        name, labels = segment(predictor, path)
        write_segmentation(args.output, name, labels)
    return 0


if __name__ == "__main__":
    sys.exit(main())
