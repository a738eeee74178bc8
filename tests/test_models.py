"""Model configurations, parameter counts and strict checkpoint loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inference.build import CheckpointError, build_model, load_checkpoint, parameter_counts
from inference.cases import load_case
from inference.config import get_config
from inference.modeling.lite_medsam import LiteMedSAM
from inference.modeling.transformer import Attention
from inference.transforms import preprocess
from reference.decoder import sam_form_decode


def test_litemedsam_parameter_counts_match_the_published_model() -> None:
    counts = parameter_counts(LiteMedSAM(get_config("litemedsam")))
    assert counts == {
        "image_encoder": 5_726_740,
        "prompt_encoder": 6_220,
        "mask_decoder": 4_058_340,
        "total": 9_791_300,
        "state_dict": 9_801_439,
    }


@pytest.mark.parametrize(("name", "encoder_millions"), [("swiftmedsam-v1", 5.10), ("swiftmedsam-v2", 4.44)])
def test_swiftmedsam_encoder_sizes(name: str, encoder_millions: float) -> None:
    counts = parameter_counts(LiteMedSAM(get_config(name)))
    assert round(counts["image_encoder"] / 1e6, 2) == encoder_millions


@pytest.mark.parametrize("name", ["litemedsam", "swiftmedsam-v1", "swiftmedsam-v2"])
def test_forward_shapes(name: str) -> None:
    model = build_model(name)
    with torch.no_grad():
        embedding = model.image_encoder(torch.rand(1, 3, 256, 256))
        logits, iou = model.decode(embedding, torch.tensor([[10.0, 20.0, 100.0, 200.0], [0, 0, 255, 255]]))
    assert embedding.shape == (1, 256, 64, 64)
    assert logits.shape == (2, 1, 256, 256) and iou.shape == (2, 1)


def test_box_embedding_uses_pixel_centres() -> None:
    encoder = build_model("swiftmedsam-v2").prompt_encoder
    boxes = torch.tensor([[10.0, 20.0, 100.0, 200.0]])
    expected = encoder.pe_layer.encode((boxes.reshape(1, 2, 2) + 0.5) / 256)
    expected = expected + torch.cat([encoder.point_embeddings[2].weight, encoder.point_embeddings[3].weight])
    torch.testing.assert_close(encoder.embed_boxes(boxes), expected)


def test_load_accepts_a_state_dict_under_model(tmp_path: Path) -> None:
    source = build_model("swiftmedsam-v2")
    path = tmp_path / "wrapped.pth"
    torch.save({"model": source.state_dict(), "epoch": 3}, path)
    target = build_model("swiftmedsam-v2", path)
    for key, value in source.state_dict().items():
        assert torch.equal(value, target.state_dict()[key]), key


def test_load_lists_missing_unexpected_and_mismatched_keys(tmp_path: Path) -> None:
    state = build_model("swiftmedsam-v2").state_dict()
    del state["mask_decoder.iou_token.weight"]
    state["mask_decoder.extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        build_model("swiftmedsam-v2", path)
    message = str(err.value)
    assert "missing: mask_decoder.iou_token.weight" in message
    assert "unexpected: mask_decoder.extra.weight" in message

    with pytest.raises(CheckpointError, match=r"shape mismatch: mask_decoder.transformer.layers.0.mlp.lin1.weight \(2048, 256\) vs \(1024, 256\)"):
        load_checkpoint(LiteMedSAM(get_config("swiftmedsam-v1")), _litemedsam_random(tmp_path))


def _litemedsam_random(tmp_path: Path) -> Path:
    path = tmp_path / "litemedsam_random.pth"
    torch.save(LiteMedSAM(get_config("litemedsam")).state_dict(), path)
    return path


def test_real_litemedsam_checkpoint_loads_strictly(lite_medsam_checkpoint: Path) -> None:
    model = build_model("litemedsam", lite_medsam_checkpoint)
    assert not model.training
    with pytest.raises(CheckpointError, match="does not fit model 'swiftmedsam-v2'"):
        build_model("swiftmedsam-v2", lite_medsam_checkpoint)


def test_unknown_model_name_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="known models: litemedsam, swiftmedsam-v1, swiftmedsam-v2"):
        get_config("sam-huge")


@pytest.mark.parametrize("name", ["litemedsam", "swiftmedsam-v2"])
def test_one_prepared_image_serves_every_box_as_a_full_decode_of_each(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name)
    embedding = torch.randn(1, 256, 64, 64)
    boxes = torch.tensor([[10.0, 20.0, 120.0, 200.0], [50.0, 60.0, 70.0, 90.0], [0.0, 0.0, 255.0, 255.0]])
    with torch.no_grad():
        prepared = model.prepare_decoder(embedding)
        assert all(t.shape[0] == 1 for t in prepared)  # computed once, not per box
        logits, iou = model.decode_prepared(prepared, boxes)
        # The decoder as SAM writes it: the image repeated per box, all four mask tokens.
        sparse, dense = model.prompt_encoder(boxes)
        full, full_iou = model.mask_decoder(embedding.expand(3, -1, -1, -1), model.prompt_encoder.get_dense_pe(),
                                            sparse, dense, multimask_output=True)
        single = [model.decode(embedding, box[None])[0] for box in boxes]
    assert logits.shape == (3, 1, 256, 256) and iou.shape == (3, 1)
    torch.testing.assert_close(logits, torch.cat(single), atol=1e-4, rtol=0)
    assert full.shape == (3, 3, 256, 256) and full_iou.shape == (3, 3)


def _projected_forms(attention: Attention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
    """The attention as SAM writes it: project q, k and v, attend, project the output."""
    return attention.attend(attention.q_proj(q), attention.k_proj(k), attention.v_proj(v))


def test_attention_without_projecting_the_image_side_is_the_same_arithmetic() -> None:
    """In float64 the reordered forms equal projecting everything, for a batch of boxes and a shared image."""
    torch.manual_seed(0)
    attention = Attention(256, 8, downsample_rate=2).double()
    for image_batch in (3, 1):
        tokens = torch.randn(3, 7, 256, dtype=torch.float64)
        image, values = torch.randn(2, image_batch, 4096, 256, dtype=torch.float64)
        torch.testing.assert_close(attention.attend_few_queries(tokens, image, values),
                                   _projected_forms(attention, tokens, image, values), atol=1e-12, rtol=0)
        torch.testing.assert_close(attention.attend_few_keys(image, tokens, tokens),
                                   _projected_forms(attention, image, tokens, tokens), atol=1e-12, rtol=0)
        q_columns = attention.q_proj(image).transpose(1, 2)
        torch.testing.assert_close(attention.attend_few_keys_projected(q_columns, tokens, tokens),
                                   _projected_forms(attention, image, tokens, tokens), atol=1e-12, rtol=0)


def test_the_decoder_equals_sams_arithmetic(lite_medsam_checkpoint: Path, demo_data: Path) -> None:
    """Shared image half, reordered attention, token-layout upscaling and one mask against SAM's form, in float64.

    The embedding is the real encoder's of a real demo image; the SAM form is the
    benchmark reference's (all projections, transposed convolutions, four masks).
    """
    model = build_model("litemedsam", lite_medsam_checkpoint)
    case = load_case(demo_data / "inputs" / "2DBox_Microscope_0001.npz")
    model_input, _ = preprocess(case.image, model.config.input_size)
    boxes = torch.tensor([[10.0, 20.0, 120.0, 200.0], [50.0, 60.0, 70.0, 90.0], [0.0, 0.0, 255.0, 255.0]])
    with torch.no_grad():
        embedding = model.image_encoder(torch.from_numpy(model_input)).double()
        model = model.double()
        logits, iou = model.decode(embedding, boxes.double())
        sam_logits, sam_iou = sam_form_decode(model, embedding, boxes.double())
    assert logits.shape == (3, 1, 256, 256) and sam_logits.shape == (3, 4, 256, 256)
    assert (logits > 0).any() and (logits < 0).any()
    torch.testing.assert_close(logits, sam_logits[:, :1], atol=1e-9, rtol=0)
    torch.testing.assert_close(iou, sam_iou[:, :1], atol=1e-12, rtol=0)


def test_upscaling_in_token_layout_is_the_transposed_convolutions() -> None:
    """upscaled_masks equals output_upscaling on the (B, C, h, w) map followed by the hypernetwork product."""
    torch.manual_seed(2)
    decoder = build_model("litemedsam").mask_decoder.double()
    src = torch.randn(2, 16 * 12, 256, dtype=torch.float64)
    hyper_in = torch.randn(2, 3, 32, dtype=torch.float64)
    with torch.no_grad():
        upscaled = decoder.output_upscaling(src.transpose(1, 2).reshape(2, 256, 16, 12))
        expected = (hyper_in @ upscaled.flatten(2)).view(2, 3, 64, 48)
        actual = decoder.upscaled_masks(src, hyper_in, 16, 12)
    torch.testing.assert_close(actual, expected, atol=1e-12, rtol=0)
