"""Build the predictor for a model and backend, loading only what that backend needs."""

from __future__ import annotations

from pathlib import Path

from checkpoints.manifest import EXPORT_DIR, checkpoint_for, exported_files
from inference.backends import PARTS, Backend, OnnxBackend, OpenVinoBackend, TorchBackend
from inference.config import get_config
from inference.predictor import BoxPredictor

BACKENDS = ("openvino", "onnxruntime", "torch")
# OpenVINO's compiled models; the image fills it when it is built (a fresh container imports instead of compiling).
OPENVINO_CACHE_DIR = EXPORT_DIR / "openvino-cache"


def create_backend(
    model: str, backend: str, threads: int, checkpoint: Path | None = None, precision: str = "f32"
) -> Backend:
    """Instantiate `backend` for `model`: this machine's exported files, or torch with a checkpoint."""
    get_config(model)  # fail early on an unknown name
    if precision != "f32" and backend != "openvino":
        raise ValueError(f"--precision {precision} applies to --backend openvino only")
    if checkpoint is not None and backend != "torch":
        raise ValueError(f"--checkpoint applies to --backend torch; for {backend} run "
                         "python -m inference.export --checkpoint PATH --check-data DIR first")
    if backend == "openvino":
        if precision == "int8":  # the int8 encoder with the f32 decoder; the f32 encoder is not read
            files = exported_files(model, "openvino", exclude=("encoder", "encoder_weights"))
            files |= exported_files(model, "openvino-int8")
        else:
            files = exported_files(model, "openvino")
        return OpenVinoBackend(*(files[part] for part in PARTS), threads, precision, OPENVINO_CACHE_DIR)
    if backend == "onnxruntime":
        files = exported_files(model, "onnx")
        return OnnxBackend(*(files[part] for part in PARTS), threads)
    if backend == "torch":
        from inference.build import build_model

        # The manifest's checkpoint is verified (size, sha256) before it is loaded; a file
        # the user names has no record to check, and loads with weights_only all the same.
        return TorchBackend(build_model(model, checkpoint or checkpoint_for(model).record.verify()), threads)
    raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


def create_predictor(
    model: str, backend: str, threads: int, checkpoint: Path | None = None, precision: str = "f32"
) -> BoxPredictor:
    """A BoxPredictor for `model` on `backend`."""
    return BoxPredictor(create_backend(model, backend, threads, checkpoint, precision), get_config(model).image_size)
