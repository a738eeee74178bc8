"""Build the predictor for a model and backend, loading only what that backend needs."""

from __future__ import annotations

from pathlib import Path

from checkpoints.store import checkpoint_record, exported_records, load_manifest
from inference.backends import Backend, OnnxBackend, TorchBackend
from inference.config import get_config
from inference.predictor import BoxPredictor

BACKENDS = ("onnxruntime", "torch")


def default_checkpoint(model: str) -> Path:
    """The manifest checkpoint whose architecture config is `model`."""
    manifest = load_manifest()
    for name, entry in manifest["checkpoints"].items():
        if entry["config"] == model:
            return checkpoint_record(name, manifest).path
    raise ValueError(f"no checkpoint for {model!r} in the manifest: pass --checkpoint PATH")


def create_backend(model: str, backend: str, threads: int, checkpoint: Path | None = None) -> Backend:
    """Instantiate `backend` for `model`: exported ONNX files, or torch with a checkpoint."""
    get_config(model)  # fail early on an unknown name
    if backend == "onnxruntime":
        if checkpoint is not None:
            raise ValueError("--checkpoint applies to --backend torch; for onnxruntime run python -m inference.export --checkpoint PATH first")
        files = exported_records(model)
        for record in files.values():
            if not record.path.is_file():
                raise FileNotFoundError(f"{record.path} is missing: run python -m inference.export --model {model}")
        return OnnxBackend(files["encoder"].path, files["decoder"].path, threads)
    if backend == "torch":
        from inference.build import build_model

        return TorchBackend(build_model(model, checkpoint or default_checkpoint(model)), threads)
    raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


def create_predictor(model: str, backend: str, threads: int, checkpoint: Path | None = None) -> BoxPredictor:
    """A BoxPredictor for `model` on `backend`."""
    return BoxPredictor(create_backend(model, backend, threads, checkpoint), get_config(model).image_size)
