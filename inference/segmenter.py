"""The segmenter of a run: a model on a backend with the run's settings, turning cases into label maps."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from inference.backends import Backend
from inference.cases import Case
from inference.config import get_config
from inference.labelmap import new_label_map, paint, paint_over_earlier
from inference.predictor import BoxPredictor, segment_image
from inference.registry import create_backend
from inference.segment3d import VolumeSegmenter
from inference.settings import RunSettings


class Segmenter:
    """Owns the run's settings and its predictor; the 2D and 3D code take what they need from it."""

    def __init__(self, settings: RunSettings, backend: Backend) -> None:
        """`backend`: the settings' model on the settings' backend (see `build_segmenter`)."""
        self.settings = settings
        self.predictor = BoxPredictor(backend, get_config(settings.model).input_size)
        self.volumes = VolumeSegmenter(self.predictor, settings.propagation)

    def segment(self, case: Case) -> np.ndarray:
        """The uint16 label map of a case: each box's label where its mask is, later boxes on top."""
        label_map = new_label_map(case.spatial_shape)
        if case.is_3d:
            for index, z, mask in self.volumes.segment(case.image, case.boxes):
                paint_over_earlier(label_map[z], mask, int(case.box_labels[index]))
        else:
            for label, mask in zip(case.box_labels, segment_image(self.predictor, case.image, case.boxes)):
                paint(label_map, mask, int(label))
        return label_map


def build_segmenter(settings: RunSettings, wrap: Callable[[Backend], Backend] | None = None) -> Segmenter:
    """Load the settings' model on their backend (wrapped by `wrap`, e.g. a profiler's timer) into a Segmenter."""
    backend = create_backend(settings.model, settings.backend, settings.threads,
                             precision=settings.precision, checkpoint=settings.checkpoint)
    return Segmenter(settings, backend if wrap is None else wrap(backend))
