"""Export a model to ONNX (encoder; prompt encoder + decoder), check it against torch, record it.

`python -m inference.export --model litemedsam` writes
checkpoints/exported/<model>.encoder.onnx and <model>.decoder.onnx, runs both
with ONNX Runtime next to torch on real demo images, and records their size,
sha256 and measured error in checkpoints/manifest.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from checkpoints.store import CHECKPOINTS_DIR, load_manifest, save_manifest, sha256_of
from inference.backends import OnnxBackend, TorchBackend
from inference.build import build_model
from inference.io import discover_cases, load_case
from inference.modeling.lite_medsam import LiteMedSAM
from inference.predictor import BoxPredictor
from inference.runtime import default_checkpoint

EXPORT_DIR = CHECKPOINTS_DIR / "exported"
OPSET = 17
MIN_MASK_AGREEMENT = 0.999  # fraction of pixels on which torch and ONNX masks agree


class EncoderGraph(nn.Module):
    """Tracing wrapper: model-space image -> image embedding."""

    def __init__(self, model: LiteMedSAM) -> None:
        super().__init__()
        self.image_encoder = model.image_encoder

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.image_encoder(image)


class DecoderGraph(nn.Module):
    """Tracing wrapper: one embedding and B model-space boxes -> B low-res logits and IoU.

    The box encoding (with SAM's +0.5 pixel-centre shift) and the dense positional
    encoding are part of the graph, so callers pass boxes exactly as to torch.
    """

    def __init__(self, model: LiteMedSAM) -> None:
        super().__init__()
        self.model = model

    def forward(self, image_embeddings: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.decode(image_embeddings, boxes)


@dataclass(frozen=True)
class ParityReport:
    """Largest differences between ONNX Runtime and torch on the check images."""

    embedding_max_abs: float
    logits_max_abs: float
    mask_agreement: float
    images: int
    boxes: int

    @property
    def ok(self) -> bool:
        """Whether the masks agree well enough to ship the export."""
        return self.mask_agreement >= MIN_MASK_AGREEMENT


def export_onnx(model: LiteMedSAM, out_dir: Path) -> dict[str, Path]:
    """Write `<name>.encoder.onnx` and `<name>.decoder.onnx` for the model into `out_dir`."""
    model = model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    size, dim, grid = cfg.image_size, cfg.decoder.transformer_dim, cfg.embedding_size
    paths = {"encoder": out_dir / f"{cfg.name}.encoder.onnx", "decoder": out_dir / f"{cfg.name}.decoder.onnx"}
    with torch.no_grad():
        torch.onnx.export(
            EncoderGraph(model), (torch.zeros(1, 3, size, size),), str(paths["encoder"]),
            input_names=["image"], output_names=["image_embeddings"], opset_version=OPSET, dynamo=False,
        )
        boxes = torch.tensor([[10.0, 20.0, 120.0, 200.0], [0.0, 0.0, 255.0, 255.0]])
        torch.onnx.export(
            DecoderGraph(model), (torch.zeros(1, dim, grid, grid), boxes), str(paths["decoder"]),
            input_names=["image_embeddings", "boxes"], output_names=["low_res_logits", "iou_predictions"],
            dynamic_axes={"boxes": {0: "boxes"}, "low_res_logits": {0: "boxes"}, "iou_predictions": {0: "boxes"}},
            opset_version=OPSET, dynamo=False,
        )
    return paths


def check_parity(model: LiteMedSAM, paths: dict[str, Path], images: list[tuple[np.ndarray, np.ndarray]]) -> ParityReport:
    """Compare ONNX Runtime with torch on (image, pixel boxes) pairs: embeddings, logits, masks."""
    reference = BoxPredictor(TorchBackend(model, threads=torch.get_num_threads()), model.config.image_size)
    exported = BoxPredictor(OnnxBackend(paths["encoder"], paths["decoder"], threads=torch.get_num_threads()), model.config.image_size)
    emb_err = logit_err = 0.0
    agree = total = n_boxes = 0
    for image, boxes in images:
        ref_emb, onnx_emb = reference.embed(image), exported.embed(image)
        emb_err = max(emb_err, float(np.abs(ref_emb.embedding - onnx_emb.embedding).max()))
        model_boxes = reference.to_model_space(boxes, ref_emb.original_shape).astype(np.float32)
        # Same embedding into both decoders isolates the decoder's own error.
        ref_logits = reference.backend.decode(ref_emb.embedding, model_boxes)
        onnx_logits = exported.backend.decode(ref_emb.embedding, model_boxes)
        logit_err = max(logit_err, float(np.abs(ref_logits - onnx_logits).max()))
        for ref_mask, onnx_mask in zip(reference.predict(ref_emb, model_boxes), exported.predict(onnx_emb, model_boxes)):
            agree += int((ref_mask == onnx_mask).sum())
            total += ref_mask.size
        n_boxes += len(boxes)
    return ParityReport(emb_err, logit_err, agree / max(total, 1), len(images), n_boxes)


def check_images(input_dir: Path, max_boxes: int = 24) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, boxes) pairs from demo cases: each 2D image, and each 3D box's middle slice."""
    pairs = []
    for path in discover_cases(input_dir):
        case = load_case(path)
        if not case.is_3d:
            pairs.append((case.image, case.boxes[:max_boxes]))
            continue
        for box in case.boxes[:4]:
            z = int((box[5] - box[2]) / 2 + box[2])
            pairs.append((case.image[z], box[None, [0, 1, 3, 4]]))
    if not pairs:
        raise ValueError(f"no cases to check the export against in {input_dir}")
    return pairs


def record_export(model_name: str, checkpoint: Path, paths: dict[str, Path], report: ParityReport) -> None:
    """Store the exported files' size and sha256 and the parity figures in the manifest."""
    manifest = load_manifest()
    manifest["exported"][model_name] = {
        "checkpoint": checkpoint.name,
        "opset": OPSET,
        "files": {
            part: {"file": str(path.relative_to(CHECKPOINTS_DIR)), "size": path.stat().st_size, "sha256": sha256_of(path)}
            for part, path in paths.items()
        },
        "parity": {
            "embedding_max_abs_error": float(f"{report.embedding_max_abs:.3g}"),
            "logits_max_abs_error": float(f"{report.logits_max_abs:.3g}"),
            "mask_agreement": round(report.mask_agreement, 6),
            "images": report.images,
            "boxes": report.boxes,
        },
    }
    save_manifest(manifest)


def run_export(model_name: str, checkpoint: Path, check_dir: Path, out_dir: Path = EXPORT_DIR, record: bool = True) -> ParityReport:
    """Export, check parity on `check_dir` cases and (if `record`) update the manifest."""
    model = build_model(model_name, checkpoint)
    paths = export_onnx(model, out_dir)
    report = check_parity(model, paths, check_images(check_dir))
    if not report.ok:
        raise RuntimeError(f"ONNX masks agree with torch on only {report.mask_agreement:.4%} of pixels")
    if record:
        record_export(model_name, checkpoint, paths, report)
    return report


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m inference.export", description=__doc__)
    parser.add_argument("--model", default="litemedsam")
    parser.add_argument("--checkpoint", type=Path, help="default: the manifest's checkpoint for the model")
    parser.add_argument("--check-data", type=Path, help="folder of demo cases (default: build the demo data)")
    parser.add_argument("--out-dir", type=Path, default=EXPORT_DIR)
    args = parser.parse_args(argv)
    checkpoint = args.checkpoint or default_checkpoint(args.model)
    record = args.out_dir.resolve() == EXPORT_DIR.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        check_dir = args.check_data
        if check_dir is None:
            from demo.build import build_demo

            build_demo(Path(tmp))
            check_dir = Path(tmp) / "inputs"
        report = run_export(args.model, checkpoint, check_dir, args.out_dir, record)
    print(
        f"{args.model}: {report.images} images, {report.boxes} boxes; max abs error embedding "
        f"{report.embedding_max_abs:.2e}, logits {report.logits_max_abs:.2e}; masks agree on "
        f"{report.mask_agreement:.5%} of pixels" + ("; recorded in the manifest" if record else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
