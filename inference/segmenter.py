"""The segmenter of a run: the run's settings and its models, turning cases into label maps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from casefiles import CaseError
from inference.backends import Backend
from inference.cases import Case
from inference.config import get_config
from inference.labelmap import new_label_map, paint, paint_over_earlier
from inference.predictor import BoxPredictor, segment_image
from inference.registry import check_loadable, create_backend
from inference.routing import AUTO, Routing, read_routing
from inference.segment3d import VolumeSegmenter
from inference.settings import RunSettings


@dataclass(frozen=True)
class LoadedModel:
    """One model on the run's backend: its 2D predictor and its 3D segmenter."""

    predictor: BoxPredictor
    volumes: VolumeSegmenter


class Segmenter:
    """Owns the run's settings and its models; the 2D and 3D code take what they need from it.

    With `--model auto` (a `routing`), each case goes to the model its modality is
    routed to. A model is loaded when the first case that needs it comes, and the
    one before it is released then, so one model is held at a time: `run_order`
    groups the cases by model so that each is loaded once.
    """

    def __init__(self, settings: RunSettings, load: Callable[[str], Backend], routing: Routing | None = None) -> None:
        """`load(model)`: that model on the settings' backend (see `build_segmenter`)."""
        if (settings.model == AUTO) != (routing is not None):
            raise ValueError("a routing table goes with --model auto, and only with it")
        self.settings = settings
        self.routing = routing
        self._load = load
        self._loaded: dict[str, LoadedModel] = {}

    def model_for(self, case_name: str) -> str:
        """The model that segments the named case."""
        return self.settings.model if self.routing is None else self.routing.model_for(case_name)

    def run_order(self, paths: list[Path]) -> list[Path]:
        """`paths` grouped by the model that segments them (the routing's order), by name within a model.

        A name that holds no modality goes first: it fails without a model.
        """
        if self.routing is None:
            return list(paths)
        order = {model: position for position, model in enumerate(self.routing.models())}

        def model_position(path: Path) -> int:
            try:
                return order[self.model_for(path.name)]
            except CaseError:
                return -1

        return sorted(paths, key=model_position)

    def loaded(self, model: str) -> LoadedModel:
        """The model, loaded now (and the one held before released) if it is not held."""
        if model not in self._loaded:
            self._loaded.clear()
            predictor = BoxPredictor(self._load(model), get_config(model).input_size)
            volumes = VolumeSegmenter(predictor, self.settings.propagation, slice_step=self.settings.slice_step)
            self._loaded[model] = LoadedModel(predictor, volumes)
        return self._loaded[model]

    def held(self) -> list[str]:
        """The models loaded and not released (at most one)."""
        return list(self._loaded)

    def segment(self, case: Case) -> np.ndarray:
        """The uint16 label map of a case: each box's label where its mask is, later boxes on top."""
        model = self.loaded(self.model_for(case.name))
        label_map = new_label_map(case.spatial_shape)
        if case.is_3d:
            for index, z, mask in model.volumes.segment(case.image, case.boxes):
                paint_over_earlier(label_map[z], mask, int(case.box_labels[index]))
        else:
            for label, mask in zip(case.box_labels, segment_image(model.predictor, case.image, case.boxes)):
                paint(label_map, mask, int(label))
        return label_map


class WorkerStartError(RuntimeError):
    """A worker process (--workers, --dask) could not build its segmenter (its models): the run cannot go on."""


def build_segmenter(
    settings: RunSettings, wrap: Callable[[Backend], Backend] | None = None, *, load_now: bool = True
) -> Segmenter:
    """The run's Segmenter, each model's backend wrapped by `wrap` (e.g. a profiler's timer).

    One model is loaded now; with `--model auto` the routing table is read and every
    model it can choose is checked to be loadable (nothing is loaded until a case
    needs it), so a missing export stops the run before the first case. Without
    `load_now` no model is loaded, only checked: the segmenter of a process that hands
    the cases to workers, which need it for the settings and the order of the cases.
    """
    routing = read_routing() if settings.model == AUTO else None
    if routing is not None and settings.checkpoint is not None:
        raise ValueError("--checkpoint holds one model's weights: name that model with --model instead of auto")

    def load(model: str) -> Backend:
        backend = create_backend(model, settings.backend, settings.threads,
                                 precision=settings.precision, checkpoint=settings.checkpoint)
        return backend if wrap is None else wrap(backend)

    segmenter = Segmenter(settings, load, routing)
    if routing is None and load_now:
        segmenter.loaded(settings.model)
    else:
        for model in [settings.model] if routing is None else routing.models():
            check_loadable(model, settings.backend, settings.precision)
    return segmenter
