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
        _, chans, h, w = image_pe.shape

        hs, src = self.transformer.forward_prepared(prepared, image_pe, tokens)
        iou_token_out = hs[:, 0, :]
        mask_tokens_out = hs[:, 1 : 1 + self.num_mask_tokens, :]

        upscaled = self.output_upscaling(src.transpose(1, 2).reshape(batch, chans, h, w))
        # Only the masks asked for: each is its own row of the product, so the values do not change.
        selected = range(1, self.num_mask_tokens) if multimask_output else range(1)
        hyper_in = torch.stack([self.output_hypernetworks_mlps[i](mask_tokens_out[:, i, :]) for i in selected], dim=1)
        _, up_chans, up_h, up_w = upscaled.shape
        masks = (hyper_in @ upscaled.view(batch, up_chans, up_h * up_w)).view(batch, -1, up_h, up_w)
        iou_pred = self.iou_prediction_head(iou_token_out)
        return masks, iou_pred[:, selected.start : selected.stop]

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
