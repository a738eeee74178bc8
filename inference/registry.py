"""The backend table: each backend with its precisions and the exported files it loads; builds a backend.

OpenVINO runs the IR in f32, bf16 or with the int8 encoder; ONNX Runtime runs the
ONNX files in f32; torch runs the checkpoint (the reference; needs the dev
requirements). The CLI and the benchmarks take their choices from this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from checkpoints.manifest import EXPORT_DIR, ChecksumError, checkpoint_for, exported_files, read_export
from inference.backends import EXPORTED_GRAPHS, Backend, OnnxBackend, OpenVinoBackend, TorchBackend
from inference.config import get_config

# OpenVINO's compiled models; the image fills it when it is built (a fresh container imports instead of compiling).
OPENVINO_CACHE_DIR = EXPORT_DIR / "openvino-cache"


@dataclass(frozen=True)
class Precision:
    """What a precision computes in."""

    compute: str  # the arithmetic the backend is told to use in the encoder; the decoder computes f32
    summary: str


PRECISIONS: dict[str, Precision] = {
    "f32": Precision("f32", "f32 (the reference's arithmetic)"),
    "bf16": Precision("bf16", "bf16 encoder with the f32 decoder (faster only on CPUs with native bf16; moves masks)"),
    # The encoder quantised by inference.export.quantize (some layers left in f32) with the f32 decoder.
    "int8": Precision("f32", "int8 encoder with the f32 decoder (moves masks)"),
}


# Not a precision of its own: resolved to one of PRECISIONS before anything is loaded.
AUTO_PRECISION = "auto"


def native_bf16() -> bool:
    """Whether OpenVINO computes bf16 natively on this CPU (AVX512-BF16 or AMX; elsewhere it computes f32)."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def resolve_precision(precision: str, backend: str, bf16_is_native: Callable[[], bool] = native_bf16) -> str:
    """`auto`: bf16 on OpenVINO where the CPU computes it natively, f32 elsewhere; any other precision as it is."""
    if precision != AUTO_PRECISION:
        return precision
    return "bf16" if backend == "openvino" and bf16_is_native() else "f32"


@dataclass(frozen=True)
class BackendSpec:
    """A backend: per precision the export formats it reads (a later one's parts replace an earlier one's; none:
    the checkpoint), and how it is built from what it uses."""

    files: dict[str, tuple[str, ...]]
    build: Callable[..., Backend]  # (model, threads, [precision], [checkpoint])
    uses_checkpoint: bool = False

    @property
    def precisions(self) -> tuple[str, ...]:
        """The precisions it offers."""
        return tuple(self.files)


def _openvino(model: str, threads: int, precision: str) -> Backend:
    files = exported_files_of(model, BACKENDS["openvino"].files[precision])
    compute = PRECISIONS[precision].compute
    return OpenVinoBackend(*(files[graph] for graph in EXPORTED_GRAPHS), threads, compute, OPENVINO_CACHE_DIR)


def _onnxruntime(model: str, threads: int) -> Backend:
    files = exported_files_of(model, BACKENDS["onnxruntime"].files["f32"])
    return OnnxBackend(*(files[graph] for graph in EXPORTED_GRAPHS), threads)


def _torch(model: str, threads: int, precision: str, checkpoint: Path | None) -> Backend:
    from inference.build import build_model

    # The manifest's checkpoint is verified (size, sha256) before it is loaded; a file
    # the user names has no record to check, and loads with weights_only all the same.
    return TorchBackend(build_model(model, checkpoint or checkpoint_for(model).file.verify()), threads,
                        PRECISIONS[precision].compute)


BACKENDS: dict[str, BackendSpec] = {
    "openvino": BackendSpec({"f32": ("openvino",), "bf16": ("openvino",), "int8": ("openvino", "openvino-int8")},
                            _openvino),
    "onnxruntime": BackendSpec({"f32": ("onnx",)}, _onnxruntime),
    # torch's bf16 emulates bf16 hardware on any CPU (inference.bf16_emulation), to measure how bf16 moves masks.
    "torch": BackendSpec({"f32": (), "bf16": ()}, _torch, uses_checkpoint=True),
}


def backend_precisions() -> list[tuple[str, str]]:
    """Every (backend, precision) pair the table offers, in table order."""
    return [(name, precision) for name, spec in BACKENDS.items() for precision in spec.precisions]


def exported_files_of(model: str, formats: tuple[str, ...]) -> dict[str, Path]:
    """A model's verified files by part from `formats`; a part a later format replaces is not read."""
    files: dict[str, Path] = {}
    for fmt in reversed(formats):
        files = exported_files(model, fmt, exclude=tuple(files)) | files
    return files


def backend_spec(backend: str, precision: str, checkpoint: Path | None = None) -> BackendSpec:
    """The table's entry for `backend`; ValueError for a backend, precision or checkpoint it does not take."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    spec = BACKENDS[backend]
    if precision not in spec.precisions:
        raise ValueError(f"--precision {precision}: --backend {backend} offers {', '.join(spec.precisions)}")
    if checkpoint is not None and not spec.uses_checkpoint:
        raise ValueError(f"--checkpoint applies to --backend torch; for {backend} run "
                         "python -m inference.export --checkpoint PATH --check-data DIR first")
    return spec


def check_loadable(model: str, backend: str, precision: str = "f32") -> None:
    """Fail now, without loading anything, where `backend` could not load `model` at `precision` later.

    The export record (or the manifest's checkpoint) must exist and name every format
    the precision reads; the files are verified when they are loaded.
    """
    get_config(model)
    spec = backend_spec(backend, precision)
    if spec.uses_checkpoint:
        checkpoint_for(model)
        return
    recorded = read_export(model).files
    missing = [fmt for fmt in spec.files[precision] if fmt not in recorded]
    if missing:
        raise ChecksumError(f"{model} has no {', '.join(missing)} export here, which --backend {backend} "
                            f"--precision {precision} reads: run python -m inference.export --model {model}")


def create_backend(
    model: str, backend: str, threads: int, *, precision: str = "f32", checkpoint: Path | None = None
) -> Backend:
    """Build `backend` for `model`, handing it only the options it uses; ValueError for a choice it lacks."""
    get_config(model)  # fail early on an unknown name
    spec = backend_spec(backend, precision, checkpoint)
    options: dict[str, object] = {}
    if len(spec.precisions) > 1:
        options["precision"] = precision
    if spec.uses_checkpoint:
        options["checkpoint"] = checkpoint
    return spec.build(model, threads, **options)
