"""Architecture hyper-parameters of the supported models, as named configurations."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EncoderConfig:
    """TinyViT image encoder hyper-parameters."""

    input_size: int = 256
    in_chans: int = 3
    embed_dims: tuple[int, ...] = (64, 128, 160, 320)
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (2, 4, 5, 10)
    window_sizes: tuple[int, ...] = (7, 7, 14, 7)
    # Stride of the patch merging that ends stages 0..n-2; LiteMedSAM keeps the
    # last stage at the resolution of the one before it.
    merge_strides: tuple[int, ...] = (2, 2, 1)
    mlp_ratio: float = 4.0
    mbconv_expand_ratio: float = 4.0
    local_conv_size: int = 3
    out_chans: int = 256

    @property
    def embedding_size(self) -> int:
        """Side length of the output embedding grid."""
        size = self.input_size
        for stride in self.merge_strides:
            size //= stride
        return size


@dataclass(frozen=True)
class DecoderConfig:
    """Mask decoder (two-way transformer) hyper-parameters."""

    transformer_dim: int = 256
    depth: int = 2
    mlp_dim: int = 2048
    num_heads: int = 8
    attention_downsample_rate: int = 2
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256


@dataclass(frozen=True)
class ModelConfig:
    """A complete box-prompted SAM-style model: encoder, prompt encoder, decoder."""

    name: str
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    mask_in_chans: int = 16

    @property
    def input_size(self) -> int:
        """Side length of the square model input."""
        return self.encoder.input_size

    @property
    def embedding_size(self) -> int:
        """Side length of the image embedding grid."""
        return self.encoder.embedding_size


MODEL_CONFIGS: dict[str, ModelConfig] = {
    "litemedsam": ModelConfig(name="litemedsam"),
    "swiftmedsam-v1": ModelConfig(
        name="swiftmedsam-v1",
        encoder=EncoderConfig(depths=(2, 2, 4, 2)),
        decoder=DecoderConfig(depth=1, mlp_dim=1024, num_heads=8, iou_head_depth=2),
    ),
    "swiftmedsam-v2": ModelConfig(
        name="swiftmedsam-v2",
        encoder=EncoderConfig(depths=(1, 2, 2, 2)),
        decoder=DecoderConfig(depth=1, mlp_dim=256, num_heads=4, iou_head_depth=2),
    ),
}


def get_config(name: str) -> ModelConfig:
    """Return the named model configuration or raise a ValueError listing the known names."""
    try:
        return MODEL_CONFIGS[name]
    except KeyError:
        known = ", ".join(sorted(MODEL_CONFIGS))
        raise ValueError(f"unknown model {name!r}; known models: {known}") from None
