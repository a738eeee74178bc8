"""SAM's own mask decoder arithmetic: every attention projects the 64x64 side, the upscaling runs as
transposed convolutions, all four masks are computed. The baseline decodes this way."""

from __future__ import annotations

import numpy as np
import torch

from inference.backends import TorchBackend
from inference.modeling.lite_medsam import LiteMedSAM


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
