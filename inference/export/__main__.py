"""Export a model for the CPU backends, check it against torch on real images, record it.

`python -m inference.export --model litemedsam --check-data demo_data/inputs` writes
checkpoints/exported/<model>.<part>.onnx for the encoder and the decoder's image and
box halves, converts them to OpenVINO IR (<model>.<part>.xml/.bin), runs them with
ONNX Runtime and OpenVINO (f32) next to torch on the cases of the check folder, and
only if both agree records their size, sha256 and the measured errors in
checkpoints/exported/<model>.json (untracked). The int8 encoder is calibrated on
`--calibration-data`, training cases (`python -m training.images`), and its masks are
compared with f32's on the check cases, which it has not seen.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

from casefiles import discover_cases
from checkpoints.manifest import EXPORT_DIR, checkpoint_for, record_export
from inference.backends import EXPORTED_GRAPHS, OnnxBackend, OpenVinoBackend, TorchBackend
from inference.build import build_model
from inference.config import MODEL_CONFIGS
from inference.export.onnx_files import OPSET, export_onnx
from inference.export.openvino_files import convert_to_openvino
from inference.export.parity import ParityReport, check_images, check_parity, mean_box_dice
from inference.export.quantize import calibration_inputs, quantize_encoder
from inference.registry import PRECISIONS


class ExportError(RuntimeError):
    """The exported graphs do not reproduce torch closely enough to be recorded."""


def run_export(
    model_name: str, checkpoint: Path, check_dir: Path, out_dir: Path = EXPORT_DIR, calibration_dir: Path | None = None
) -> tuple[dict[str, ParityReport], float | None]:
    """Export into a staging folder, check parity per backend, then move the files into `out_dir` and record them.

    With a `calibration_dir`, the encoder IR is also quantised (calibrated on its cases);
    its masks' mean per-box Dice against f32 on the check images is returned and recorded.
    A failed check raises ExportError and leaves `out_dir` (earlier files and record) untouched.
    """
    import openvino as ov

    model = build_model(model_name, checkpoint)
    images = check_images(check_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".staging-") as staging:
        staged = {"onnx": export_onnx(model, Path(staging))}
        staged["openvino"] = convert_to_openvino(staged["onnx"], Path(staging))
        if calibration_dir is not None:
            int8_encoder = quantize_encoder(staged["openvino"]["encoder"],
                                            calibration_inputs(calibration_dir, model.config.input_size),
                                            Path(staging) / f"{model_name}.encoder.int8.xml")
            staged["openvino-int8"] = {"encoder": int8_encoder, "encoder_weights": int8_encoder.with_suffix(".bin")}
        exported = {
            "onnxruntime": OnnxBackend(*(staged["onnx"][part] for part in EXPORTED_GRAPHS), threads),
            "openvino-f32": OpenVinoBackend(*(staged["openvino"][part] for part in EXPORTED_GRAPHS), threads),
        }
        reports = check_parity(TorchBackend(model, threads), exported, images, model.config.input_size)
        int8_dice = None
        if calibration_dir is not None:
            int8_backend = OpenVinoBackend(int8_encoder, *(staged["openvino"][part] for part in EXPORTED_GRAPHS[1:]), threads,
                                           PRECISIONS["int8"].compute)
            int8_dice = mean_box_dice(exported["openvino-f32"], int8_backend, images, model.config.input_size)
        failed = [f"{name}: {report.summary()}" for name, report in reports.items() if not report.ok]
        if failed:
            raise ExportError(f"{model_name}: not recorded, the export is too far from torch:\n  " + "\n  ".join(failed))
        final = {fmt: {part: out_dir / path.name for part, path in parts.items()} for fmt, parts in staged.items()}
        for fmt, parts in staged.items():
            for part, path in parts.items():
                os.replace(path, final[fmt][part])
    details = {
        "onnx_opset": OPSET,
        "openvino": ov.__version__,
        "parity": {name: report.as_record() for name, report in reports.items()},
    }
    if int8_dice is not None:
        # Not a gate: int8 is an option whose masks differ from f32's; this says by how much.
        details["int8_mean_box_dice_vs_f32"] = round(int8_dice, 4)
        details["int8_calibration_cases"] = len(discover_cases(calibration_dir))
    record_export(model_name, final, checkpoint, details, out_dir)
    return reports, int8_dice


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m inference.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="litemedsam", choices=sorted(MODEL_CONFIGS))
    parser.add_argument("--checkpoint", type=Path, help="default: the manifest's checkpoint for the model")
    parser.add_argument("--check-data", type=Path, required=True,
                        help="folder of case .npz files to check parity on (e.g. demo_data/inputs)")
    parser.add_argument("--out-dir", type=Path, default=EXPORT_DIR)
    parser.add_argument("--calibration-data", type=Path,
                        help="folder of training case .npz files to calibrate the int8 encoder on "
                             "(python -m training.images; never the check or evaluation cases)")
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 encoder (needs nncf)")
    args = parser.parse_args(argv)
    if not args.no_int8 and args.calibration_data is None:
        parser.error("the int8 encoder needs --calibration-data DIR (training cases), or pass --no-int8")
    try:
        checkpoint = args.checkpoint or checkpoint_for(args.model).path
        reports, int8_dice = run_export(args.model, checkpoint, args.check_data, args.out_dir,
                                        None if args.no_int8 else args.calibration_data)
    except (ExportError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for name, report in reports.items():
        print(f"{args.model} on {name}: {report.summary()}")
    if int8_dice is not None:
        print(f"{args.model} int8 encoder (openvino): mean per-box mask Dice against f32 {int8_dice:.4f}")
    print(f"recorded in {args.out_dir / (args.model + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
