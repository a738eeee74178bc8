"""SAM mask decoder: prompt tokens + image embedding -> low-resolution mask logits and IoU."""

from __future__ import annotations

import torch
from torch import nn

from inference.config import DecoderConfig
from inference.modeling.common import MLP, LayerNorm2d
from inference.modeling.transformer import TwoWayTransformer


class MaskDecoder(nn.Module):
    """Predicts masks at 4x the embedding resolution from prompt and image embeddings."""

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        dim = cfg.transformer_dim
        self.transformer = TwoWayTransformer(
            cfg.depth, dim, cfg.num_heads, cfg.mlp_dim, cfg.attention_downsample_rate
        )
        self.num_mask_tokens = cfg.num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(dim, cfg.iou_head_hidden_dim, self.num_mask_tokens, cfg.iou_head_depth)

    def prepare_image(
        self, image_embeddings: torch.Tensor, image_pe: torch.Tensor, dense_prompt_embeddings: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """The decoder's work that depends on the image alone (box prompts add no mask), for decode_prepared()."""
        return self.transformer.prepare(image_embeddings + dense_prompt_embeddings, image_pe)

    def decode_prepared(
        self,
        prepared: tuple[torch.Tensor, ...],
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        multimask_output: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (B, M, 4h, 4w) mask logits and (B, M) IoU predictions, M = 1 or 3, for B prompts."""
        batch = sparse_prompt_embeddings.shape[0]
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([output_tokens.unsqueeze(0).expand(batch, -1, -1), sparse_prompt_embeddings], dim=1)
        h, w = image_pe.shape[-2:]

        hs, src = self.transformer.forward_prepared(prepared, image_pe, tokens)
        iou_token_out = hs[:, 0, :]
        mask_tokens_out = hs[:, 1 : 1 + self.num_mask_tokens, :]

        # Only the masks asked for: each is its own row of the product, so the values do not change.
        selected = range(1, self.num_mask_tokens) if multimask_output else range(1)
        hyper_in = torch.stack([self.output_hypernetworks_mlps[i](mask_tokens_out[:, i, :]) for i in selected], dim=1)
        masks = self.upscaled_masks(src, hyper_in, h, w)
        iou_pred = self.iou_prediction_head(iou_token_out)
        return masks, iou_pred[:, selected.start : selected.stop]

    def upscaled_masks(self, src: torch.Tensor, hyper_in: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """hyper_in (B, M, C/8) against output_upscaling of the image features src (B, h*w, C): (B, M, 4h, 4w).

        The same arithmetic as running output_upscaling on the (B, C, h, w) map, kept in
        the features' own (position, channel) layout: a stride-2 2x2 transposed
        convolution writes each input position's 2x2 output block with one matrix
        product, LayerNorm2d normalises each output pixel's channels, and only the
        final (B, M, 4h, 4w) logits are put in image order.
        """
        first, norm, _, second, _ = self.output_upscaling
        batch = src.shape[0]
        x = src @ _block_weight(first) + first.bias.repeat(4)  # (B, h*w, 2*2*C/4)
        x = x.unflatten(-1, (4, -1))  # (B, h*w, 4, C/4): the 2x2 block of each position
        x = torch.nn.functional.gelu(torch.nn.functional.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, norm.eps))
        x = x @ _block_weight(second) + second.bias.repeat(4)  # (B, h*w, 4, 2*2*C/8)
        x = torch.nn.functional.gelu(x.unflatten(-1, (4, -1)))  # (B, h*w, 4, 4, C/8)
        masks = x.flatten(1, 3) @ hyper_in.transpose(1, 2)  # (B, h*w*16, M)
        # Position (i, j), first block (a, b), second block (c, d) is pixel (4i + 2a + c, 4j + 2b + d).
        masks = masks.view(batch, h, w, 2, 2, 2, 2, -1).permute(0, 7, 1, 3, 5, 2, 4, 6)
        return masks.reshape(batch, -1, 4 * h, 4 * w)

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (B, M, 4h, 4w) mask logits and (B, M) IoU predictions, M = 1 or 3.

        `image_embeddings` holds one embedding (shared by every prompt) or one per prompt.
        """
        prepared = self.prepare_image(image_embeddings, image_pe, dense_prompt_embeddings)
        return self.decode_prepared(prepared, image_pe, sparse_prompt_embeddings, multimask_output)


def _block_weight(layer: nn.ConvTranspose2d) -> torch.Tensor:
    """A stride-2 2x2 transposed convolution's weight (in, out, 2, 2) as an (in, 2*2*out) matrix, block-major."""
    return layer.weight.permute(0, 2, 3, 1).flatten(1)
