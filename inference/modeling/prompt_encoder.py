"""SAM prompt encoder restricted to what box prompts use (plus the learned mask branch weights)."""

from __future__ import annotations

import math

import torch
from torch import nn

from inference.modeling.common import LayerNorm2d


class PositionEmbeddingRandom(nn.Module):
    """Positional encoding with random spatial frequencies (Fourier features)."""

    def __init__(self, num_pos_feats: int) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn((2, num_pos_feats)))

    def encode(self, coords: torch.Tensor) -> torch.Tensor:
        """Encode coordinates normalised to [0, 1] (last axis x, y) into sin/cos features."""
        coords = (2 * coords - 1) @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def dense(self, size: int) -> torch.Tensor:
        """Encoding of every cell centre of a size x size grid, as (C, size, size)."""
        matrix = self.positional_encoding_gaussian_matrix
        centres = (torch.arange(size, dtype=matrix.dtype, device=matrix.device) + 0.5) / size
        y, x = torch.meshgrid(centres, centres, indexing="ij")
        return self.encode(torch.stack([x, y], dim=-1)).permute(2, 0, 1)


class PromptEncoder(nn.Module):
    """Encodes box prompts into sparse tokens and the no-mask dense embedding."""

    def __init__(self, embed_dim: int, embedding_size: int, input_size: int, mask_in_chans: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.embedding_size = embedding_size
        self.input_size = input_size
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        # Four point kinds: negative, positive, box top-left, box bottom-right.
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        # Mask-prompt branch: unused for boxes, kept so checkpoints load strictly.
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> torch.Tensor:
        """Positional encoding of the image embedding grid, (1, C, h, w)."""
        return self.pe_layer.dense(self.embedding_size).unsqueeze(0)

    def embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """(B, 4) boxes in input pixels -> (B, 2, C) corner tokens."""
        # +0.5 moves integer pixel coordinates to pixel centres, as SAM does.
        corners = (boxes.reshape(-1, 2, 2) + 0.5) / self.input_size
        embedding = self.pe_layer.encode(corners)
        corner_kind = torch.cat([self.point_embeddings[2].weight, self.point_embeddings[3].weight], dim=0)
        return embedding + corner_kind.unsqueeze(0)

    def dense_embedding(self) -> torch.Tensor:
        """The dense embedding of 'no mask prompt', (1, C, 1, 1): the same for every box and every cell.

        Added to a (1, C, h, w) embedding it broadcasts, so exported graphs hold C
        numbers instead of the (C, h, w) map.
        """
        return self.no_mask_embed.weight.reshape(1, -1, 1, 1)

    def forward(self, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return sparse (B, 2, C) and dense (B, C, h, w) prompt embeddings for box prompts."""
        size = self.embedding_size
        return self.embed_boxes(boxes), self.dense_embedding().expand(boxes.shape[0], -1, size, size)
