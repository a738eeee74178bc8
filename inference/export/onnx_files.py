"""Write a model's encoder and its two decoder halves as ONNX files."""

from __future__ import annotations

from pathlib import Path

import torch

from inference.backends import DECODER_HANDOFF, EXPORTED_GRAPHS
from inference.export.graphs import DecoderBoxGraph, DecoderImageGraph, EncoderGraph
from inference.modeling.lite_medsam import LiteMedSAM

OPSET = 17


def export_onnx(model: LiteMedSAM, out_dir: Path) -> dict[str, Path]:
    """Write `<name>.<part>.onnx` for each of EXPORTED_GRAPHS into `out_dir`; return them by part."""
    model = model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    size, dim, grid = cfg.input_size, cfg.decoder.transformer_dim, cfg.embedding_size
    paths = {part: out_dir / f"{cfg.name}.{part}.onnx" for part in EXPORTED_GRAPHS}
    embedding = torch.zeros(1, dim, grid, grid)
    boxes = torch.tensor([[10.0, 20.0, 120.0, 200.0], [0.0, 0.0, 255.0, 255.0]])
    by_box = {"boxes": {0: "boxes"}, "low_res_logits": {0: "boxes"}, "iou_predictions": {0: "boxes"}}
    with torch.no_grad():
        prepared = model.prepare_decoder(embedding)
        torch.onnx.export(
            EncoderGraph(model), (torch.zeros(1, 3, size, size),), str(paths["encoder"]),
            input_names=["image"], output_names=["image_embeddings"], opset_version=OPSET, dynamo=False,
        )
        torch.onnx.export(
            DecoderImageGraph(model), (embedding,), str(paths["decoder_image"]),
            input_names=["image_embeddings"], output_names=list(DECODER_HANDOFF), opset_version=OPSET, dynamo=False,
        )
        torch.onnx.export(
            DecoderBoxGraph(model), (*prepared, boxes), str(paths["decoder_box"]),
            input_names=[*DECODER_HANDOFF, "boxes"], output_names=["low_res_logits", "iou_predictions"],
            dynamic_axes=by_box, opset_version=OPSET, dynamo=False,
        )
    return paths
