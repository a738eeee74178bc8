"""Tracing wrappers: the exact computations the exported graphs contain, without branches."""

from __future__ import annotations

import torch
from torch import nn

from inference.modeling.lite_medsam import LiteMedSAM


class EncoderGraph(nn.Module):
    """Model-space image (1, 3, S, S) -> image embedding (1, C, h, w)."""

    def __init__(self, model: LiteMedSAM) -> None:
        super().__init__()
        self.image_encoder = model.image_encoder

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.image_encoder(image)


class DecoderImageGraph(nn.Module):
    """One embedding (1, C, h, w) -> the decoder's box-independent tensors for it.

    Outputs: the image features (1, h*w, C) with the no-mask embedding added, and the
    first block's key and value (token-to-image) and query (image-to-token) projections.
    """

    def __init__(self, model: LiteMedSAM) -> None:
        super().__init__()
        self.model = model

    def forward(self, image_embeddings: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.model.prepare_decoder(image_embeddings)


class DecoderBoxGraph(nn.Module):
    """DecoderImageGraph's outputs and B model-space boxes -> B low-res logits and IoU.

    The box encoding (with SAM's +0.5 pixel-centre shift) and the dense positional
    encoding are part of the graph, so callers pass boxes exactly as to torch.
    """

    def __init__(self, model: LiteMedSAM) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, keys: torch.Tensor, image_k: torch.Tensor, image_v: torch.Tensor, image_q: torch.Tensor, boxes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.decode_prepared((keys, image_k, image_v, image_q), boxes)
