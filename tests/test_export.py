"""ONNX export: the graphs reproduce torch (box shift included) on a real image; only a good export is recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from checkpoints.manifest import read_export
from inference.backends import OnnxBackend, TorchBackend
from inference.build import build_model
from inference.export import parity
from inference.export.__main__ import ExportError, run_export
from inference.export.onnx_files import export_onnx
from inference.export.parity import check_images, check_parity
from inference.io import load_case


def test_exported_swiftmedsam_matches_torch_on_a_demo_image(demo_data: Path, tmp_path: Path) -> None:
    case = load_case(demo_data / "inputs" / "2DBox_Microscope_0001.npz")
    model = build_model("swiftmedsam-v2")
    paths = export_onnx(model, tmp_path)
    for path in paths.values():
        onnx.checker.check_model(str(path))
    decoder_inputs = [i.name for i in onnx.load(str(paths["decoder"])).graph.input]
    assert decoder_inputs == ["image_embeddings", "boxes"]

    report = check_parity(TorchBackend(model, 2), OnnxBackend(paths["encoder"], paths["decoder"], 2),
                          [(case.image, case.boxes[:5])])
    assert report.ok, report.summary()
    assert report.embedding_max_abs_error < 1e-3
    assert report.logits_max_abs_error < 1e-2
    assert report.mask_agreement >= 0.999


def test_check_images_come_from_the_given_folder(demo_data: Path, tmp_path: Path) -> None:
    pairs = check_images(demo_data / "inputs")
    # 2D nuclei (24 of its boxes), then 4 boxes' middle slices of each 3D case (the MR case has 2).
    assert [len(boxes) for _, boxes in pairs] == [24] + [1] * 4 + [1] * 2
    assert pairs[0][0].shape == (512, 512, 3) and pairs[1][0].ndim == 2
    with pytest.raises(ValueError, match="no cases"):
        check_images(tmp_path)


def test_an_export_that_fails_parity_is_not_recorded(
    demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lite_medsam_checkpoint: Path
) -> None:
    inputs = tmp_path / "check"
    inputs.mkdir()
    (inputs / "2DBox_Microscope_0001.npz").write_bytes((demo_data / "inputs" / "2DBox_Microscope_0001.npz").read_bytes())
    out = tmp_path / "exported"
    monkeypatch.setattr(parity, "MIN_MASK_AGREEMENT", 1.01)  # no export can pass
    with pytest.raises(ExportError, match=r"not recorded.*masks agree on .* \(limit 101.0%\)"):
        run_export("swiftmedsam-v2", _random_weights(tmp_path), inputs, out)
    assert sorted(p.name for p in out.iterdir()) == []  # no files, no record
    monkeypatch.undo()
    report = run_export("swiftmedsam-v2", _random_weights(tmp_path), inputs, out)
    record = read_export("swiftmedsam-v2", out)
    assert record.details["parity"]["mask_agreement"] == round(report.mask_agreement, 6)
    assert sorted(p.name for p in out.iterdir()) == [
        "swiftmedsam-v2.decoder.onnx", "swiftmedsam-v2.encoder.onnx", "swiftmedsam-v2.json"]


def _random_weights(folder: Path) -> Path:
    path = folder / "swift.pth"
    if not path.exists():
        torch.manual_seed(0)
        torch.save(build_model("swiftmedsam-v2").state_dict(), path)
    return path


def test_decoder_boxes_are_shifted_to_pixel_centres_in_the_graph(tmp_path: Path) -> None:
    import onnxruntime as ort

    model = build_model("swiftmedsam-v2")
    paths = export_onnx(model, tmp_path)
    session = ort.InferenceSession(str(paths["decoder"]), providers=["CPUExecutionProvider"])
    embedding = np.random.default_rng(0).normal(size=(1, 256, 64, 64)).astype(np.float32)
    boxes = np.array([[30, 40, 120, 150]], dtype=np.float32)
    onnx_logits = session.run(["low_res_logits"], {"image_embeddings": embedding, "boxes": boxes})[0]
    with torch.no_grad():
        same, _ = model.decode(torch.from_numpy(embedding), torch.from_numpy(boxes))
        shifted, _ = model.decode(torch.from_numpy(embedding), torch.from_numpy(boxes - 0.5))
    np.testing.assert_allclose(onnx_logits, same.numpy(), atol=1e-3)
    # Dropping the +0.5 (as one published export did) would be a visible change.
    assert np.abs(onnx_logits - shifted.numpy()).max() > 10 * np.abs(onnx_logits - same.numpy()).max()
