"""Build the predictor for a model and backend, loading only what that backend needs."""

from __future__ import annotations

from pathlib import Path

from checkpoints.manifest import checkpoint_for, exported_files
from inference.backends import Backend, OnnxBackend, TorchBackend
from inference.config import get_config
from inference.predictor import BoxPredictor

BACKENDS = ("onnxruntime", "torch")


def create_backend(model: str, backend: str, threads: int, checkpoint: Path | None = None) -> Backend:
    """Instantiate `backend` for `model`: this machine's exported files, or torch with a checkpoint."""
    get_config(model)  # fail early on an unknown name
    if backend == "onnxruntime":
        if checkpoint is not None:
            raise ValueError("--checkpoint applies to --backend torch; for onnxruntime run "
                             "python -m inference.export --checkpoint PATH --check-data DIR first")
        files = exported_files(model)
        return OnnxBackend(files["encoder"], files["decoder"], threads)
    if backend == "torch":
        from inference.build import build_model

        return TorchBackend(build_model(model, checkpoint or checkpoint_for(model).path), threads)
    raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


def create_predictor(model: str, backend: str, threads: int, checkpoint: Path | None = None) -> BoxPredictor:
    """A BoxPredictor for `model` on `backend`."""
    return BoxPredictor(create_backend(model, backend, threads, checkpoint), get_config(model).image_size)
