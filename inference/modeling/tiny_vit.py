"""TinyViT image encoder in the LiteMedSAM variant (256x256 input, 64x64 embedding).

Module names follow the LiteMedSAM checkpoint so its state dict loads strictly.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional as F

from inference.config import EncoderConfig
from inference.modeling.common import LayerNorm2d


class Conv2dBN(nn.Sequential):
    """Convolution without bias followed by batch normalisation."""

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        kernel_size: int = 1,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        bn_weight_init: float = 1.0,
    ) -> None:
        super().__init__()
        self.add_module("c", nn.Conv2d(in_chans, out_chans, kernel_size, stride, padding, groups=groups, bias=False))
        bn = nn.BatchNorm2d(out_chans)
        nn.init.constant_(bn.weight, bn_weight_init)
        nn.init.constant_(bn.bias, 0.0)
        self.add_module("bn", bn)


class PatchEmbed(nn.Module):
    """Two 1x1 conv-BN layers; LiteMedSAM keeps the full input resolution here."""

    def __init__(self, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(
            Conv2dBN(in_chans, embed_dim // 2),
            nn.GELU(),
            Conv2dBN(embed_dim // 2, embed_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


class MBConv(nn.Module):
    """Inverted residual block: expand, depthwise 3x3, project, add, activate."""

    def __init__(self, chans: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(chans * expand_ratio)
        self.conv1 = Conv2dBN(chans, hidden)
        self.act1 = nn.GELU()
        self.conv2 = Conv2dBN(hidden, hidden, 3, 1, 1, groups=hidden)
        self.act2 = nn.GELU()
        self.conv3 = Conv2dBN(hidden, chans, bn_weight_init=0.0)
        self.act3 = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.conv1(x))
        y = self.act2(self.conv2(y))
        return self.act3(self.conv3(y) + x)


class PatchMerging(nn.Module):
    """Downsampling between stages; takes NCHW or tokens, returns tokens (B, L, C)."""

    def __init__(self, resolution: int, dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.act = nn.GELU()
        self.conv1 = Conv2dBN(dim, out_dim)
        self.conv2 = Conv2dBN(out_dim, out_dim, 3, stride, 1, groups=out_dim)
        self.conv3 = Conv2dBN(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            x = x.view(x.shape[0], self.resolution, self.resolution, -1).permute(0, 3, 1, 2)
        x = self.act(self.conv1(x))
        x = self.act(self.conv2(x))
        x = self.conv3(x)
        return x.flatten(2).transpose(1, 2)


class ConvLayer(nn.Module):
    """First stage: MBConv blocks then patch merging."""

    def __init__(self, dim: int, depth: int, expand_ratio: float, downsample: PatchMerging | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MBConv(dim, expand_ratio) for _ in range(depth))
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x if self.downsample is None else self.downsample(x)


class Attention(nn.Module):
    """Multi-head self-attention in a window with learned relative-position biases."""

    def __init__(self, dim: int, num_heads: int, window_size: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.key_dim = dim // num_heads
        self.scale = self.key_dim**-0.5
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

        points = list(itertools.product(range(window_size), range(window_size)))
        offsets: dict[tuple[int, int], int] = {}
        idxs = []
        for p1 in points:
            for p2 in points:
                offset = (abs(p1[0] - p2[0]), abs(p1[1] - p2[1]))
                idxs.append(offsets.setdefault(offset, len(offsets)))
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, len(offsets)))
        self.register_buffer(
            "attention_bias_idxs", torch.tensor(idxs, dtype=torch.long).view(len(points), len(points)), persistent=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = x.shape
        qkv = self.qkv(self.norm(x)).view(batch, tokens, self.num_heads, 3 * self.key_dim)
        q, k, v = qkv.permute(0, 2, 1, 3).split(self.key_dim, dim=3)
        bias = self.attention_biases[:, self.attention_bias_idxs]
        attn = ((q @ k.transpose(-2, -1)) * self.scale + bias).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(batch, tokens, -1)
        return self.proj(out)


class Mlp(nn.Module):
    """Pre-norm feed-forward block."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class TinyViTBlock(nn.Module):
    """Windowed attention, depthwise local convolution, then MLP, with residuals."""

    def __init__(
        self, dim: int, resolution: int, num_heads: int, window_size: int, mlp_ratio: float, local_conv_size: int
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.window_size = window_size
        self.attn = Attention(dim, num_heads, window_size)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.local_conv = Conv2dBN(dim, dim, local_conv_size, 1, local_conv_size // 2, groups=dim)

    def _windowed_attention(self, x: torch.Tensor) -> torch.Tensor:
        size, ws = self.resolution, self.window_size
        batch, tokens, chans = x.shape
        if size == ws:
            return self.attn(x)
        pad = (ws - size % ws) % ws
        x = x.view(batch, size, size, chans)
        if pad:
            x = F.pad(x, (0, 0, 0, pad, 0, pad))
        padded = size + pad
        n = padded // ws
        x = x.view(batch, n, ws, n, ws, chans).transpose(2, 3).reshape(batch * n * n, ws * ws, chans)
        x = self.attn(x)
        x = x.view(batch, n, n, ws, ws, chans).transpose(2, 3).reshape(batch, padded, padded, chans)
        if pad:
            x = x[:, :size, :size].contiguous()
        return x.view(batch, tokens, chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, chans = x.shape
        x = x + self._windowed_attention(x)
        x = x.transpose(1, 2).reshape(batch, chans, self.resolution, self.resolution)
        x = self.local_conv(x).view(batch, chans, tokens).transpose(1, 2)
        return x + self.mlp(x)


class BasicLayer(nn.Module):
    """A transformer stage: TinyViT blocks then optional patch merging."""

    def __init__(self, blocks: list[TinyViTBlock], downsample: PatchMerging | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x if self.downsample is None else self.downsample(x)


class TinyViT(nn.Module):
    """Image encoder: (B, 3, S, S) normalised image -> (B, 256, S/4, S/4) embedding."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.embedding_size = cfg.embedding_size
        self.patch_embed = PatchEmbed(cfg.in_chans, cfg.embed_dims[0])
        resolutions = [cfg.input_size]
        for stride in cfg.merge_strides:
            resolutions.append(resolutions[-1] // stride)

        self.layers = nn.ModuleList()
        last = len(cfg.depths) - 1
        for i, depth in enumerate(cfg.depths):
            dim, res = cfg.embed_dims[i], resolutions[i]
            downsample = (
                PatchMerging(res, dim, cfg.embed_dims[i + 1], cfg.merge_strides[i]) if i < last else None
            )
            if i == 0:
                self.layers.append(ConvLayer(dim, depth, cfg.mbconv_expand_ratio, downsample))
                continue
            blocks = [
                TinyViTBlock(dim, res, cfg.num_heads[i], cfg.window_sizes[i], cfg.mlp_ratio, cfg.local_conv_size)
                for _ in range(depth)
            ]
            self.layers.append(BasicLayer(blocks, downsample))

        self.neck = nn.Sequential(
            nn.Conv2d(cfg.embed_dims[-1], cfg.out_chans, kernel_size=1, bias=False),
            LayerNorm2d(cfg.out_chans),
            nn.Conv2d(cfg.out_chans, cfg.out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(cfg.out_chans),
        )
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        batch, _, chans = x.shape
        x = x.view(batch, self.embedding_size, self.embedding_size, chans).permute(0, 3, 1, 2)
        return self.neck(x)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
