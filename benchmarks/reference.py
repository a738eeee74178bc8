"""The baseline algorithm as it is: `python -m benchmarks.reference -i IN -o OUT [--threads 1]`.

Torch eager LiteMedSAM; in 3D every slice is encoded again for every box that
visits it; one box per decoder call, with the SAM mask decoder's own arithmetic
(the 64x64 side projected in every attention, the upscaling as transposed
convolutions, all four masks); the baseline's propagation boxes. It is the
reference the benchmark times our default path against, and whose masks it compares.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from casefiles import discover_cases
from checkpoints.manifest import checkpoint_for
from inference.backends import TorchBackend
from inference.build import build_model
from inference.io import load_case, new_label_map, paint, write_segmentation
from inference.modeling.lite_medsam import LiteMedSAM
from inference.predictor import BoxPredictor, ImageEmbedding, segment_image
from inference.propagation import Propagation
from inference.volume import segment_volume_by_box


def sam_form_decode(model: LiteMedSAM, embedding: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, C, h, w) embedding, (B, 4) boxes -> (B, 4, 4h, 4w) mask logits and (B, 4) IoU, as SAM computes them."""
    prompt, decoder = model.prompt_encoder, model.mask_decoder
    transformer = decoder.transformer
    sparse, dense = prompt(boxes)
    output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat([output_tokens.unsqueeze(0).expand(len(boxes), -1, -1), sparse], dim=1)
    src = torch.repeat_interleave(embedding, len(boxes), dim=0) + dense
    pos = torch.repeat_interleave(prompt.get_dense_pe(), len(boxes), dim=0)
    batch, chans, h, w = src.shape
    queries, keys, key_pe = tokens, src.flatten(2).permute(0, 2, 1), pos.flatten(2).permute(0, 2, 1)
    for block in transformer.layers:
        queries = block.token_self_attention(queries, tokens)
        q, k = queries + tokens, keys + key_pe
        queries = block.norm2(queries + block.cross_attn_token_to_image(q, k, keys))
        queries = block.norm3(queries + block.mlp(queries))
        q, k = queries + tokens, keys + key_pe
        keys = block.norm4(keys + block.cross_attn_image_to_token(k, q, queries))
    q, k = queries + tokens, keys + key_pe
    queries = transformer.norm_final_attn(queries + transformer.final_attn_token_to_image(q, k, keys))
    upscaled = decoder.output_upscaling(keys.transpose(1, 2).reshape(batch, chans, h, w))
    hyper_in = torch.stack([mlp(queries[:, 1 + i]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)], dim=1)
    masks = (hyper_in @ upscaled.flatten(2)).view(batch, -1, 4 * h, 4 * w)
    return masks, decoder.iou_prediction_head(queries[:, 0])


class SamFormBackend(TorchBackend):
    """The torch model with the baseline's decoder arithmetic (sam_form_decode), first mask kept."""

    def decode(self, embedding: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Run the prompt encoder and the SAM-form mask decoder."""
        with torch.inference_mode():
            box_tensor = torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
            masks, _ = sam_form_decode(self.model, torch.from_numpy(embedding), box_tensor)
            return masks[:, 0].numpy()


class EncodeEveryTime:
    """Slice embeddings as the baseline had them: computed again on every request, never kept."""

    def __init__(self, predictor: BoxPredictor, volume: np.ndarray) -> None:
        self._predictor = predictor
        self._volume = volume

    def get(self, z: int) -> ImageEmbedding:
        """Encode slice z."""
        return self._predictor.embed(self._volume[z])

    def release(self, slices: Iterable[int]) -> None:
        """Nothing is kept, so nothing to free."""


def segment(predictor: BoxPredictor, path: Path) -> tuple[str, np.ndarray]:
    """The case's name and its label map, computed the baseline's way."""
    case = load_case(path)
    labels = new_label_map(case)
    if case.is_3d:
        slices = EncodeEveryTime(predictor, case.image)
        for index, z, mask in segment_volume_by_box(predictor, case.image, case.boxes, Propagation.BASELINE, slices):
            paint(labels[z], mask, int(case.labels[index]))
    else:
        for label, mask in zip(case.labels, segment_image(predictor, case.image, case.boxes)):
            paint(labels, mask, int(label))
    return case.name, labels


def main(argv: list[str] | None = None) -> int:
    """Segment every case of the input folder."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reference", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--input", type=Path, required=True)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    model = build_model("litemedsam", checkpoint_for("litemedsam").path)
    predictor = BoxPredictor(SamFormBackend(model, args.threads), model.config.image_size, decode_batch=1)
    for path in discover_cases(args.input):
        name, labels = segment(predictor, path)
        write_segmentation(args.output, name, labels)
    return 0


if __name__ == "__main__":
    sys.exit(main())
