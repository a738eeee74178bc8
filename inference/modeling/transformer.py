"""Two-way transformer of the SAM mask decoder: tokens attend to the image and back."""

from __future__ import annotations

import math

import torch
from torch import nn


class Attention(nn.Module):
    """Multi-head attention with an optional reduced internal width."""

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        self.num_heads = num_heads
        internal_dim = embedding_dim // downsample_rate
        if internal_dim % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide the internal width {internal_dim}")
        self.q_proj = nn.Linear(embedding_dim, internal_dim)
        self.k_proj = nn.Linear(embedding_dim, internal_dim)
        self.v_proj = nn.Linear(embedding_dim, internal_dim)
        self.out_proj = nn.Linear(internal_dim, embedding_dim)
        # Scores are scaled on the few tokens' side of each product, never on the 64x64 image's.
        self.scale = 1 / math.sqrt(internal_dim // num_heads)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, heads x width) -> (B, heads, T, width)."""
        batch, tokens, chans = x.shape
        return x.reshape(batch, tokens, self.num_heads, chans // self.num_heads).transpose(1, 2)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.attend(self.q_proj(q), self.k_proj(k), self.v_proj(v))

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Attention of already projected q, k, v; a batch of 1 broadcasts against a batch of B."""
        q, k, v = self.split_heads(q), self.split_heads(k), self.split_heads(v)
        attn = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        out = attn.softmax(dim=-1) @ v
        batch, heads, tokens, per_head = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(batch, tokens, heads * per_head))

    def attend_projected_image(self, q: torch.Tensor, k_columns: torch.Tensor, v_heads: torch.Tensor) -> torch.Tensor:
        """forward(q, k, v) with the many keys and values already projected and laid out per head.

        k_columns is k_proj(k).transpose(1, 2), (1, internal width, N); v_heads is
        v_proj(v) split in heads, (1, H, N, d): the layouts the products take, so
        no box has to transpose the image side.
        """
        q = self.split_heads(self.q_proj(q))  # (B, H, T, d)
        batch, heads, tokens, per_head = q.shape
        k_heads = k_columns.view(k_columns.shape[0], heads, per_head, -1)  # (1, H, d, N)
        attn = ((q * self.scale) @ k_heads).softmax(dim=-1)
        out = attn @ v_heads  # (B, H, T, d)
        return self.out_proj(out.transpose(1, 2).reshape(batch, tokens, heads * per_head))

    def _per_head(self, layer: nn.Linear) -> torch.Tensor:
        """An input projection's weight as (heads, per-head width, embedding width)."""
        return layer.weight.view(self.num_heads, -1, layer.weight.shape[1])

    def attend_few_queries(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """forward(q, k, v) for a few queries over many keys, without projecting the many keys and values.

        Per head, the score q_h . (W_k,h x + b_k,h) is (q_h W_k,h) . x plus a term that is
        the same for every key, which the softmax cancels; and since each row of the
        softmax sums to 1, attn (x W_v,h^T + b_v,h) = (attn x) W_v,h^T + b_v,h.
        The same arithmetic reordered: (heads x queries) products per key instead of
        the projections' (3 x internal width).
        """
        q = self.split_heads(self.q_proj(q))  # (B, H, T, d)
        batch, heads, tokens, per_head = q.shape
        q_in = ((q * self.scale) @ self._per_head(self.k_proj)).reshape(batch, heads * tokens, -1)  # (B, H*T, C)
        attn = (q_in @ k.transpose(-2, -1)).softmax(dim=-1)  # (B, H*T, N)
        mixed = (attn @ v).view(batch, heads, tokens, -1)  # (B, H, T, C)
        out = mixed @ self._per_head(self.v_proj).transpose(-2, -1) + self.v_proj.bias.view(heads, 1, per_head)
        return self.out_proj(out.transpose(1, 2).reshape(batch, tokens, heads * per_head))

    def attend_few_keys(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """forward(q, k, v) for many queries over a few keys, without projecting the many queries or outputs.

        The score (W_q,h x + b_q,h) . k_h is x . (W_q,h^T k_h) + b_q,h . k_h, so the
        queries are never projected; _mix_few_keys does the rest.
        """
        k = self.split_heads(self.k_proj(k)) * self.scale  # (B, H, T, d)
        batch, heads, tokens, per_head = k.shape
        key_in = (k @ self._per_head(self.q_proj)).reshape(batch, heads * tokens, -1)  # (B, H*T, C)
        key_bias = (k @ self.q_proj.bias.view(heads, per_head, 1)).reshape(batch, heads * tokens, 1)
        scores = key_in @ q.transpose(-2, -1) + key_bias  # (B, H*T, N)
        return self._mix_few_keys(scores.view(batch, heads, tokens, -1), v)

    def attend_few_keys_projected(self, q_columns: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """attend_few_keys for queries already projected, as columns: q_columns is q_proj(q).transpose(1, 2)."""
        k = self.split_heads(self.k_proj(k)) * self.scale  # (B, H, T, d)
        batch, heads, tokens, per_head = k.shape
        scores = k @ q_columns.view(q_columns.shape[0], heads, per_head, -1)  # (B, H, T, N)
        return self._mix_few_keys(scores, v)

    def _mix_few_keys(self, scores: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Softmax of (B, H, T, N) scaled scores over the T keys, and the output: sum_h attn_h (v_h W_o,h^T) + bias.

        Each head's values go through that head's slice of the output projection
        before they are mixed, so every query mixes (heads x keys) rows of full
        width. The scores stay with the queries last, so the softmax over a few
        keys runs along the long axis (one thread, N=4096, T=7: 1.4 ms less than
        a softmax over the last axis of (N, H, T)).
        """
        batch, heads, tokens, _ = scores.shape
        per_head = self.v_proj.out_features // heads
        attn = scores.softmax(dim=2).reshape(batch, heads * tokens, -1)  # (B, H*T, N)
        v = self.split_heads(self.v_proj(v))  # (B, H, T, d)
        out_weights = self.out_proj.weight.view(self.out_proj.weight.shape[0], heads, per_head).permute(1, 2, 0)
        head_values = (v @ out_weights).reshape(batch, heads * tokens, -1)  # (B, H*T, C)
        return attn.transpose(-2, -1) @ head_values + self.out_proj.bias


class MLPBlock(nn.Module):
    """Two linear layers with ReLU between them."""

    def __init__(self, embedding_dim: int, mlp_dim: int) -> None:
        super().__init__()
        self.lin1 = nn.Linear(embedding_dim, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(torch.relu(self.lin1(x)))


class TwoWayAttentionBlock(nn.Module):
    """Token self-attention, token-to-image attention, MLP, image-to-token attention."""

    def __init__(
        self, embedding_dim: int, num_heads: int, mlp_dim: int, downsample_rate: int, skip_first_layer_pe: bool
    ) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(embedding_dim, num_heads, downsample_rate)
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLPBlock(embedding_dim, mlp_dim)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(embedding_dim, num_heads, downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def project_image(self, keys: torch.Tensor, key_pe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The block's projections of the image side: key and value of token-to-image, query of image-to-token.

        They come in the layouts the products take: the key and query as columns
        (1, internal width, h*w), the value split in heads (1, heads, h*w, width per head).

        In the first block they depend on the image alone, so one image's projections
        serve every box prompted on it.
        """
        k = keys + key_pe
        token_to_image, image_to_token = self.cross_attn_token_to_image, self.cross_attn_image_to_token
        return (token_to_image.k_proj(k).transpose(1, 2), token_to_image.split_heads(token_to_image.v_proj(keys)),
                image_to_token.q_proj(k).transpose(1, 2))

    def token_self_attention(self, queries: torch.Tensor, query_pe: torch.Tensor) -> torch.Tensor:
        """The block's first step: the tokens attend to each other (without their encoding in the first block)."""
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        return self.norm1(queries)

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        query_pe: torch.Tensor,
        key_pe: torch.Tensor,
        image_projections: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Update tokens and image features.

        With `image_projections` (project_image's, shared by every box of an image) the
        image side is not projected again; without, the cross attentions run in the
        forms that never project the 64x64 image side (attend_few_queries, attend_few_keys).
        """
        queries = self.token_self_attention(queries, query_pe)
        token_to_image, image_to_token = self.cross_attn_token_to_image, self.cross_attn_image_to_token
        if image_projections is None:
            attended = token_to_image.attend_few_queries(queries + query_pe, keys + key_pe, keys)
        else:
            image_k, image_v, _ = image_projections
            attended = token_to_image.attend_projected_image(queries + query_pe, image_k, image_v)
        queries = self.norm2(queries + attended)
        queries = self.norm3(queries + self.mlp(queries))

        q = queries + query_pe
        if image_projections is None:
            attended = image_to_token.attend_few_keys(keys + key_pe, q, queries)
        else:
            attended = image_to_token.attend_few_keys_projected(image_projections[2], q, queries)
        keys = self.norm4(keys + attended)
        return queries, keys


class TwoWayTransformer(nn.Module):
    """Stack of two-way blocks plus a final token-to-image attention."""

    def __init__(
        self, depth: int, embedding_dim: int, num_heads: int, mlp_dim: int, attention_downsample_rate: int = 2
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(embedding_dim, num_heads, mlp_dim, attention_downsample_rate, i == 0)
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(embedding_dim, num_heads, attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def prepare(self, image_embedding: torch.Tensor, image_pe: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The work that depends on the image alone: its (N, h*w, C) features and the first block's projections."""
        keys = image_embedding.flatten(2).permute(0, 2, 1)
        key_pe = image_pe.flatten(2).permute(0, 2, 1)
        return (keys, *self.layers[0].project_image(keys, key_pe))

    def forward(
        self, image_embedding: torch.Tensor, image_pe: torch.Tensor, point_embedding: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return updated tokens (B, T, C) and image features (B, h*w, C)."""
        return self.forward_prepared(self.prepare(image_embedding, image_pe), image_pe, point_embedding)

    def forward_prepared(
        self, prepared: tuple[torch.Tensor, ...], image_pe: torch.Tensor, point_embedding: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """forward() from prepare()'s output; one prepared image (batch 1) serves B prompts."""
        keys, *image_projections = prepared
        key_pe = image_pe.flatten(2).permute(0, 2, 1)
        queries = point_embedding
        for index, layer in enumerate(self.layers):
            projections = tuple(image_projections) if index == 0 else None
            queries, keys = layer(queries, keys, point_embedding, key_pe, projections)
        q, k = queries + point_embedding, keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image.attend_few_queries(q, k, keys))
        return queries, keys
