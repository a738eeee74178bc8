"""Write a model's encoder and decoder as ONNX files."""

from __future__ import annotations

from pathlib import Path

import torch

from inference.export.graphs import DecoderGraph, EncoderGraph
from inference.modeling.lite_medsam import LiteMedSAM

OPSET = 17


def export_onnx(model: LiteMedSAM, out_dir: Path) -> dict[str, Path]:
    """Write `<name>.encoder.onnx` and `<name>.decoder.onnx` into `out_dir`; return them by part."""
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
