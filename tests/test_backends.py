"""The backend table builds each backend with what it uses; the backends agree on the real LiteMedSAM and a real
image; OpenVINO runs in the precision it is given, and with a compiled-model cache it cannot use or write."""

from __future__ import annotations

import ctypes
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from checkpoints.manifest import exported_files, exported_models
from common.overlap import dice
from inference.backends import EXPORTED_GRAPHS, LastImage, OpenVinoBackend
from inference.cases import load_case
from inference.predictor import BoxPredictor
from inference.registry import (
    BACKENDS,
    PRECISIONS,
    backend_precisions,
    create_backend,
    exported_files_of,
    native_bf16,
    resolve_precision,
)
from tests.helpers import verified_export

REPO_ROOT = Path(__file__).resolve().parent.parent
# prctl(2) option and capabilities(7) numbers: those that let root write whatever the file modes say.
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 1, 2, 3


def litemedsam_on(backend: str, threads: int, precision: str = "f32") -> BoxPredictor:
    """LiteMedSAM on `backend` with `precision`, through the registry."""
    return BoxPredictor(create_backend("litemedsam", backend, threads, precision=precision))


def test_each_backend_is_built_with_only_the_options_it_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    built = {}
    for name, spec in BACKENDS.items():
        def build(model: str, threads: int, name: str = name, **options: object) -> None:
            built[name] = (model, threads, options)
        monkeypatch.setitem(BACKENDS, name, dataclasses.replace(spec, build=build))
    create_backend("litemedsam", "openvino", 2, precision="int8")
    create_backend("litemedsam", "onnxruntime", 1)
    create_backend("swiftmedsam-v2", "torch", 1, checkpoint=Path("w.pth"))
    assert built == {"openvino": ("litemedsam", 2, {"precision": "int8"}), "onnxruntime": ("litemedsam", 1, {}),
                     "torch": ("swiftmedsam-v2", 1, {"precision": "f32", "checkpoint": Path("w.pth")})}
    with pytest.raises(ValueError, match="--checkpoint applies to --backend torch"):
        create_backend("litemedsam", "openvino", 1, checkpoint=Path("w.pth"))
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        create_backend("litemedsam", "tensorrt", 1)


def test_the_table_names_every_precision_once_and_int8_reads_the_int8_encoder() -> None:
    assert set(PRECISIONS) == {p for _, p in backend_precisions()}
    assert BACKENDS["openvino"].files["int8"] == ("openvino", "openvino-int8") and PRECISIONS["int8"].compute == "f32"
    assert all(p.compute in ("f32", "bf16") for p in PRECISIONS.values())


def test_int8_reads_the_f32_decoder_and_the_int8_encoder_files_only(exported_litemedsam: list) -> None:
    files = exported_files_of("litemedsam", BACKENDS["openvino"].files["int8"])
    assert files["encoder"].name == "litemedsam.encoder.int8.xml"
    assert files["decoder_box"].name == "litemedsam.decoder_box.xml"


def test_openvino_and_onnxruntime_agree_on_a_real_image(demo_data: Path, exported_litemedsam: list) -> None:
    case = load_case(demo_data / "inputs" / "2DBox_Microscope_0001.npz")
    openvino = litemedsam_on("openvino", 2)
    onnx = litemedsam_on("onnxruntime", 2)
    assert set(openvino.backend.inference_precisions.values()) == {"f32"}
    ov_emb, ort_emb = openvino.embed(case.image), onnx.embed(case.image)
    assert np.abs(ov_emb.embedding - ort_emb.embedding).max() < 1e-4
    boxes = openvino.to_model_space(case.boxes[:40], ov_emb.original_shape)
    agree = [np.mean(a == b) for a, b in zip(openvino.predict(ov_emb, boxes), onnx.predict(ort_emb, boxes))]
    assert len(agree) == 40 and min(agree) >= 0.999
    assert np.mean(agree) >= 0.9999


def test_bf16_is_an_option_and_never_the_default(exported_litemedsam: list) -> None:
    import openvino as ov

    bf16 = litemedsam_on("openvino", 1, precision="bf16")
    # CPUs without bf16 support run f32 whatever is asked; those with it must run what was asked, in the encoder only.
    supported = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert bf16.backend.inference_precisions == {"encoder": "bf16" if supported else "f32",
                                                 "decoder_image": "f32", "decoder_box": "f32"}
    with pytest.raises(ValueError, match="--backend onnxruntime offers f32"):
        litemedsam_on("onnxruntime", 1, precision="bf16")


def test_torch_bf16_rounds_in_bf16_on_any_cpu_and_keeps_masks_near_f32(
    demo_data: Path, lite_medsam_checkpoint: Path
) -> None:
    """torch's bf16 (inference.bf16_emulation, on any CPU) really moves the embedding, returns f32 arrays, and
    its masks stay near f32's on real nuclei: how bf16 moves masks can be measured on any CPU."""
    case = load_case(demo_data / "inputs" / "2DBox_Microscope_0001.npz")
    f32, bf16 = litemedsam_on("torch", 1), litemedsam_on("torch", 1, precision="bf16")
    f32_emb, bf16_emb = f32.embed(case.image), bf16.embed(case.image)
    assert bf16_emb.embedding.dtype == np.float32
    error = np.abs(f32_emb.embedding - bf16_emb.embedding).max()
    assert 1e-3 < error < 1.0  # bf16 keeps 8 bits of mantissa: visibly rounded, the same features
    boxes = f32.to_model_space(case.boxes[:20], f32_emb.original_shape)
    values = [dice(a, b) for a, b in zip(f32.predict(f32_emb, boxes), bf16.predict(bf16_emb, boxes))]
    assert len(values) == 20 and np.mean(values) >= 0.95


def test_openvino_leaves_its_threads_unpinned_so_parallel_processes_use_different_cores(
    exported_litemedsam: list,
) -> None:
    # Pinned, two worker processes with one thread each both ran on the first core, at half speed each.
    backend = litemedsam_on("openvino", 1).backend
    assert backend._encoder.get_compiled_model().get_property("ENABLE_CPU_PINNING") is False


def test_auto_precision_is_bf16_only_on_openvino_where_the_cpu_computes_it_natively() -> None:
    assert resolve_precision("auto", "openvino", lambda: True) == "bf16"
    assert resolve_precision("auto", "openvino", lambda: False) == "f32"
    assert resolve_precision("auto", "onnxruntime", lambda: True) == "f32"
    assert resolve_precision("auto", "torch", lambda: True) == "f32"
    assert resolve_precision("int8", "openvino", lambda: True) == "int8"
    # On this machine: what OpenVINO reports, and the CLI's settings carry the resolved precision.
    from inference.__main__ import parse_args, settings_from

    settings = settings_from(parse_args(["-i", "in", "-o", "out", "--precision", "auto"]))
    assert settings.precision == ("bf16" if native_bf16() else "f32")
    assert settings_from(parse_args(["-i", "in", "-o", "out"])).precision == "f32"


# Least mean per-box Dice against f32 on the demo's 125 nuclei (measured: LiteMedSAM 0.948, the student 0.984).
INT8_MEAN_BOX_DICE = {"litemedsam": 0.9, "swiftmedsam-v2": 0.97}


@pytest.mark.parametrize("model", sorted(INT8_MEAN_BOX_DICE))
def test_int8_encoder_is_an_option_that_stays_close_to_f32(
    model: str, demo_data: Path, exported_litemedsam: list
) -> None:
    """Each model's int8 encoder IR really differs from f32, and its masks stay near f32's on real nuclei."""
    verified_export(model)
    case = load_case(demo_data / "inputs" / "2DBox_Microscope_0001.npz")
    f32 = BoxPredictor(create_backend(model, "openvino", 2))
    int8 = BoxPredictor(create_backend(model, "openvino", 2, precision="int8"))
    f32_emb, int8_emb = f32.embed(case.image), int8.embed(case.image)
    error = np.abs(f32_emb.embedding - int8_emb.embedding).max()
    assert 1e-3 < error < 1.0  # quantised (f32 backends agree to 1e-5), yet the same features
    boxes = f32.to_model_space(case.boxes, f32_emb.original_shape)
    values = [dice(a, b) for a, b in zip(f32.predict(f32_emb, boxes), int8.predict(int8_emb, boxes))]
    assert np.mean(values) >= INT8_MEAN_BOX_DICE[model]  # an option, not the default: some nuclei move more


def test_the_decoders_image_half_runs_once_per_image() -> None:
    runs = []
    last = LastImage(lambda embedding: runs.append(embedding) or float(embedding.sum()))
    first, second = np.ones((1, 2, 2, 2), np.float32), np.zeros((1, 2, 2, 2), np.float32)
    assert [last.prepared(first), last.prepared(first), last.prepared(second), last.prepared(first)] == [8.0, 8.0, 0.0, 8.0]
    assert [r is first for r in runs] == [True, False, True]  # first, second, then first again
    # Equal values in another array are another image: identity, not content, decides.
    last.prepared(first.copy())
    assert len(runs) == 4


def test_openvino_decodes_the_same_with_and_without_the_shared_image_half(
    demo_data: Path, exported_litemedsam: list
) -> None:
    case = load_case(demo_data / "inputs" / "2DBox_Microscope_0001.npz")
    predictor = litemedsam_on("openvino", 2)
    embedded = predictor.embed(case.image)
    boxes = predictor.to_model_space(case.boxes[:6], embedded.original_shape).astype(np.float32)
    shared = predictor.backend.decode(embedded.embedding, boxes)
    fresh = np.concatenate([predictor.backend.decode(embedded.embedding.copy(), box[None]) for box in boxes])
    assert np.abs(shared - fresh).max() < 1e-4


def obey_file_modes() -> None:
    """In a child about to exec: drop root's power to ignore file modes, as `docker run --cap-drop ALL` does."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def contents(folder: Path) -> dict[str, int]:
    """File names and sizes under folder."""
    return {str(path.relative_to(folder)): path.stat().st_size for path in folder.rglob("*")}


def backend_runs(cache_dir: Path) -> Path | None:
    """Build the OpenVINO backend with `cache_dir`, check one encode and decode; the cache it kept."""
    files = exported_files("litemedsam", "openvino")
    backend = OpenVinoBackend(*(files[part] for part in EXPORTED_GRAPHS), 1, cache_dir=cache_dir)
    embedding = backend.encode(np.zeros((1, 3, 256, 256), np.float32))
    assert backend.decode(embedding, np.array([[8, 8, 64, 64]], np.float32)).shape == (1, 256, 256)
    return backend.cache_dir


def test_openvino_compiles_without_a_cache_folder_it_cannot_create(tmp_path: Path, exported_litemedsam: list) -> None:
    (tmp_path / "file").touch()
    assert backend_runs(tmp_path / "file" / "cache") is None
    assert os.listdir(tmp_path) == ["file"]


@pytest.mark.parametrize("blobs", ["none", "unusable"])
def test_openvino_runs_with_a_cache_folder_it_cannot_write(
    blobs: str, tmp_path: Path, exported_litemedsam: list
) -> None:
    """As in a read-only container: an empty cache, or one whose blobs this CPU cannot import, still gives a backend."""
    cache = tmp_path / "openvino-cache"
    cache.mkdir()
    if blobs == "unusable":
        backend_runs(cache)
        # Cut short, as OpenVINO refuses another CPU's blob: it deletes it, compiles and writes it again.
        for blob in cache.iterdir():
            os.truncate(blob, blob.stat().st_size // 2)
            blob.chmod(0o444)
        assert contents(cache)
    cache.chmod(0o555)
    before = contents(cache)
    code = "import sys, pathlib, tests.test_backends as t; print(t.backend_runs(pathlib.Path(sys.argv[1])))"
    result = subprocess.run([sys.executable, "-c", code, str(cache)], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=300, preexec_fn=obey_file_modes if os.geteuid() == 0 else None)
    cache.chmod(0o755)  # for tmp_path's clean-up
    assert result.returncode == 0, result.stderr[-3000:]
    assert contents(cache) == before and os.listdir(tmp_path) == ["openvino-cache"]
    if blobs == "unusable":
        assert result.stdout.strip() == "None"


def test_warmup_caches_every_precision_each_model_was_exported_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exported_litemedsam: list
) -> None:
    """After `python -m inference.warmup`, loading any exported model at any precision compiles nothing new."""
    from inference import registry, warmup

    monkeypatch.setattr(registry, "OPENVINO_CACHE_DIR", tmp_path)
    monkeypatch.setattr(warmup, "OPENVINO_CACHE_DIR", tmp_path)
    assert warmup.main([]) == 0
    blobs = sorted(tmp_path.iterdir())
    assert blobs
    for model in exported_models():
        for precision in BACKENDS["openvino"].precisions:
            create_backend(model, "openvino", threads=1, precision=precision)
    assert sorted(tmp_path.iterdir()) == blobs
