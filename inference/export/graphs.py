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


class DecoderGraph(nn.Module):
    """One embedding and B model-space boxes -> B low-res logits and IoU.

    The box encoding (with SAM's +0.5 pixel-centre shift) and the dense positional
    encoding are part of the graph, so callers pass boxes exactly as to torch.
    """

    def __init__(self, model: LiteMedSAM) -> None:
        super().__init__()
        self.model = model

    def forward(self, image_embeddings: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.decode(image_embeddings, boxes)
