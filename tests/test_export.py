"""ONNX export: the graphs reproduce torch (box shift included) on a real image; only a good export is recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from checkpoints.manifest import exported_files, read_export
from inference.backends import EXPORTED_GRAPHS, OnnxBackend, OpenVinoBackend, TorchBackend
from inference.build import build_model
from inference.cases import load_case
from inference.export import parity, sensitivity
from inference.export.__main__ import ExportError, run_export
from inference.export.__main__ import main as export_main
from inference.export.onnx_files import export_onnx
from inference.export.openvino_files import convert_to_openvino
from inference.export.parity import check_images, check_parity
from inference.export.quantize import calibration_images


def test_exported_swiftmedsam_matches_torch_on_a_demo_image(demo_data: Path, tmp_path: Path) -> None:
    case = load_case(demo_data / "inputs" / "2DBox_Microscope_0001.npz")
    model = build_model("swiftmedsam-v2")
    paths = export_onnx(model, tmp_path)
    for path in paths.values():
        onnx.checker.check_model(str(path))
    box_half_inputs = [i.name for i in onnx.load(str(paths["decoder_box"])).graph.input]
    assert box_half_inputs == ["keys", "image_k", "image_v", "image_q", "boxes"]

    ir = convert_to_openvino(paths, tmp_path)
    assert sorted(p.name for p in ir.values()) == sorted(
        f"swiftmedsam-v2.{part}.{suffix}" for part in EXPORTED_GRAPHS for suffix in ("xml", "bin"))
    exported = {
        "onnxruntime": OnnxBackend(*(paths[part] for part in EXPORTED_GRAPHS), 2),
        "openvino": OpenVinoBackend(*(ir[part] for part in EXPORTED_GRAPHS), 2),
    }
    reports = check_parity(TorchBackend(model, 2), exported, [(case.image, case.boxes[:5])])
    for report in reports.values():
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
    with pytest.raises(ExportError, match=r"(?s)not recorded.*onnxruntime: .*masks agree on .* \(limit 101.0%\).*openvino-f32: "):
        run_export("swiftmedsam-v2", _random_weights(tmp_path), inputs, out)
    assert sorted(p.name for p in out.iterdir()) == []  # no files, no record
    monkeypatch.undo()
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    (calibration / "3DBox_MR_0003.npz").write_bytes((demo_data / "inputs" / "3DBox_MR_0003.npz").read_bytes())
    reports, int8_dice = run_export("swiftmedsam-v2", _random_weights(tmp_path), inputs, out, calibration)
    record = read_export("swiftmedsam-v2", out)
    for name, report in reports.items():
        assert record.details["parity"][name]["mask_agreement"] == round(report.mask_agreement, 6)
    assert sorted(record.files) == ["onnx", "openvino", "openvino-int8"]
    assert 0.0 <= int8_dice <= 1.0 and record.details["int8_mean_box_dice_vs_f32"] == round(int8_dice, 4)
    assert record.details["int8_calibration_cases"] == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"swiftmedsam-v2.{part}.{suffix}" for part in EXPORTED_GRAPHS for suffix in ("onnx", "xml", "bin")]
        + ["swiftmedsam-v2.encoder.int8.xml", "swiftmedsam-v2.encoder.int8.bin", "swiftmedsam-v2.json"]
    )


def _random_weights(folder: Path) -> Path:
    path = folder / "swift.pth"
    if not path.exists():
        torch.manual_seed(0)
        torch.save(build_model("swiftmedsam-v2").state_dict(), path)
    return path


def test_decoder_boxes_are_shifted_to_pixel_centres_in_the_graph(tmp_path: Path) -> None:
    model = build_model("swiftmedsam-v2")
    paths = export_onnx(model, tmp_path)
    backend = OnnxBackend(*(paths[part] for part in EXPORTED_GRAPHS), 1)
    embedding = np.random.default_rng(0).normal(size=(1, 256, 64, 64)).astype(np.float32)
    boxes = np.array([[30, 40, 120, 150]], dtype=np.float32)
    onnx_logits = backend.decode(embedding, boxes)[:, None]
    with torch.no_grad():
        same, _ = model.decode(torch.from_numpy(embedding), torch.from_numpy(boxes))
        shifted, _ = model.decode(torch.from_numpy(embedding), torch.from_numpy(boxes - 0.5))
    np.testing.assert_allclose(onnx_logits, same.numpy(), atol=1e-3)
    # Dropping the +0.5 (as one published export did) would be a visible change.
    assert np.abs(onnx_logits - shifted.numpy()).max() > 10 * np.abs(onnx_logits - same.numpy()).max()


def test_the_int8_encoder_needs_training_cases_to_calibrate_on(
    demo_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        export_main(["--model", "litemedsam", "--check-data", str(demo_data / "inputs")])
    assert stopped.value.code == 2
    assert "needs --calibration-data DIR (training cases), or pass --no-int8" in capsys.readouterr().err


def test_the_sensitivity_metric_scores_every_box_against_the_f32_masks(
    demo_data: Path, exported_litemedsam: list[Path]
) -> None:
    import openvino as ov

    f32_files = exported_files("litemedsam", "openvino")
    reference = OpenVinoBackend(*(f32_files[part] for part in EXPORTED_GRAPHS), 2)
    pairs = calibration_images(demo_data / "inputs")[:2]  # the 125-nucleus image, then one MR slice
    items = sensitivity.validation_items(reference, pairs, 256)
    assert [len(boxes) for _, boxes, _ in items] == [sensitivity.BOXES_PER_IMAGE, len(pairs[1][1])]
    core = ov.Core()
    f32 = {"INFERENCE_PRECISION_HINT": "f32"}  # as NNCF's accuracy control compiles (OpenVINO's default may be bf16)
    same = sensitivity.item_dices(reference, core.compile_model(str(f32_files["encoder"]), "CPU", f32), items)
    assert [len(d) for d in same] == [len(boxes) for _, boxes, _ in items]
    assert min(min(d) for d in same) > 0.999  # f32 against itself (up to OpenVINO's run-to-run rounding)
    int8_encoder = exported_files("litemedsam", "openvino-int8")["encoder"]
    moved = sensitivity.item_dices(reference, core.compile_model(str(int8_encoder), "CPU", f32), items)
    assert 0.5 < np.mean([d for boxes in moved for d in boxes]) < 0.999  # int8 moves masks, but not wholesale
