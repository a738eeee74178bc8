"""Export a model to ONNX, check it against torch on real images, record it.

`python -m inference.export --model litemedsam --check-data demo_data/inputs` writes
checkpoints/exported/<model>.encoder.onnx and <model>.decoder.onnx, runs them next to
torch on the cases of the check folder, and only if they agree records their size,
sha256 and the measured errors in checkpoints/exported/<model>.json (untracked).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

from checkpoints.manifest import EXPORT_DIR, checkpoint_for, record_export
from inference.backends import OnnxBackend, TorchBackend
from inference.build import build_model
from inference.config import MODEL_CONFIGS
from inference.export.onnx_files import OPSET, export_onnx
from inference.export.parity import ParityReport, check_images, check_parity


class ExportError(RuntimeError):
    """The exported graphs do not reproduce torch closely enough to be recorded."""


def run_export(model_name: str, checkpoint: Path, check_dir: Path, out_dir: Path = EXPORT_DIR) -> ParityReport:
    """Export into a staging folder, check parity, then move the files into `out_dir` and record them.

    A failed check raises ExportError and leaves `out_dir` (earlier files and record) untouched.
    """
    model = build_model(model_name, checkpoint)
    images = check_images(check_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".staging-") as staging:
        staged = export_onnx(model, Path(staging))
        report = check_parity(
            TorchBackend(model, threads), OnnxBackend(staged["encoder"], staged["decoder"], threads),
            images, model.config.image_size,
        )
        if not report.ok:
            raise ExportError(f"{model_name}: not recorded, the export is too far from torch: {report.summary()}")
        final = {part: out_dir / path.name for part, path in staged.items()}
        for part, path in staged.items():
            os.replace(path, final[part])
    record_export(model_name, final, checkpoint, {"format": "onnx", "opset": OPSET, "parity": report.as_record()}, out_dir)
    return report


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m inference.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="litemedsam", choices=sorted(MODEL_CONFIGS))
    parser.add_argument("--checkpoint", type=Path, help="default: the manifest's checkpoint for the model")
    parser.add_argument("--check-data", type=Path, required=True,
                        help="folder of case .npz files to check parity on (e.g. demo_data/inputs)")
    parser.add_argument("--out-dir", type=Path, default=EXPORT_DIR)
    args = parser.parse_args(argv)
    try:
        checkpoint = args.checkpoint or checkpoint_for(args.model).path
        report = run_export(args.model, checkpoint, args.check_data, args.out_dir)
    except (ExportError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.model}: {report.summary()}; recorded in {args.out_dir / (args.model + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
