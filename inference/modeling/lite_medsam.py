"""The composite box-prompted model: image encoder, prompt encoder, mask decoder."""

from __future__ import annotations

import torch
from torch import nn

from inference.config import ModelConfig
from inference.modeling.mask_decoder import MaskDecoder
from inference.modeling.prompt_encoder import PromptEncoder
from inference.modeling.tiny_vit import TinyViT


class LiteMedSAM(nn.Module):
    """TinyViT + SAM prompt encoder + SAM mask decoder, one mask per box."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.image_encoder = TinyViT(cfg.encoder)
        self.prompt_encoder = PromptEncoder(
            cfg.decoder.transformer_dim, cfg.embedding_size, cfg.input_size, cfg.mask_in_chans
        )
        self.mask_decoder = MaskDecoder(cfg.decoder)

    def decode(self, image_embeddings: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes (B, 4) in model-input pixels -> (B, 1, 256, 256) low-res logits and (B, 1) IoU."""
        return self.decode_prepared(self.prepare_decoder(image_embeddings), boxes)

    def prepare_decoder(self, image_embeddings: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The decoder's box-independent work for one image embedding (1, C, h, w), shared by all its boxes."""
        pe = self.prompt_encoder.get_dense_pe()
        return self.mask_decoder.prepare_image(image_embeddings, pe, self.prompt_encoder.dense_embedding())

    def decode_prepared(self, prepared: tuple[torch.Tensor, ...], boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """decode() from prepare_decoder()'s output: (B, 4) boxes -> (B, 1, 256, 256) logits and (B, 1) IoU."""
        sparse = self.prompt_encoder.embed_boxes(boxes)
        return self.mask_decoder.decode_prepared(prepared, self.prompt_encoder.get_dense_pe(), sparse)

    def forward(self, images: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One box per image: images (B, 3, S, S), boxes (B, 4) -> logits (B, 1, S, S), IoU (B, 1)."""
        embeddings = self.image_encoder(images)
        sparse, dense = self.prompt_encoder(boxes)
        pe = self.prompt_encoder.get_dense_pe()
        return self.mask_decoder(embeddings, pe, sparse, dense)
