"""Pre/post-processing against the baseline's rules (and torch's interpolation as reference)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from inference.propagation import baseline_mask_box, mask_box, pixel_extent
from inference.transforms import (
    postprocess,
    preprocess,
    resized_shape,
    scale_boxes,
)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((512, 512), (256, 256)), ((100, 512), (50, 256)), ((5, 512), (3, 256)), ((185, 149), (256, 206)), ((61, 57), (256, 239))],
)
def test_resized_shape_rounds_half_up(shape: tuple[int, int], expected: tuple[int, int]) -> None:
    assert resized_shape(*shape, 256) == expected


def test_preprocess_normalises_resized_image_and_pads_bottom_right() -> None:
    image = np.random.default_rng(0).integers(20, 200, (100, 512, 3), dtype=np.uint8)
    model_input, resized = preprocess(image, 256)
    assert model_input.shape == (1, 3, 256, 256) and model_input.dtype == np.float32
    assert resized == (50, 256)
    content = model_input[0, :, :50, :]
    assert content.min() == 0.0 and content.max() == pytest.approx(1.0)
    assert not model_input[0, :, 50:, :].any()


def test_grey_slice_equals_the_baselines_three_channel_repeat() -> None:
    grey = np.random.default_rng(1).integers(0, 255, (185, 149), dtype=np.uint8)
    from_grey, _ = preprocess(grey, 256)
    from_rgb, _ = preprocess(np.repeat(grey[..., None], 3, axis=2), 256)
    np.testing.assert_array_equal(from_grey, from_rgb)


def test_constant_image_does_not_divide_by_zero() -> None:
    model_input, _ = preprocess(np.full((64, 64, 3), 7, np.uint8), 256)
    assert np.isfinite(model_input).all() and not model_input.any()


def test_scale_boxes_truncates() -> None:
    boxes = np.array([[101, 21, 399, 79], [0, 0, 511, 99]])
    assert scale_boxes(boxes, (100, 512), 256).tolist() == [[50, 10, 199, 39], [0, 0, 255, 49]]


def test_postprocess_matches_torch_bilinear_crop_sigmoid() -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 4, (256, 256)).astype(np.float32)
    resized, original = (203, 256), (410, 517)
    reference = F.interpolate(
        torch.from_numpy(logits[None, None, :203, :256]), size=original, mode="bilinear", align_corners=False
    )
    expected = (torch.sigmoid(reference) > 0.5)[0, 0].numpy()
    mask = postprocess(logits, resized, original)
    assert mask.shape == original and mask.dtype == bool
    differing = np.count_nonzero(mask != expected)
    assert differing <= 5, differing  # only pixels within float rounding of the threshold


def test_sigmoid_only_on_positive_logits_gives_the_full_sigmoids_mask() -> None:
    """Tiny positive logits, where float32's sigmoid rounds to exactly 0.5, stay out of the mask."""
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 4, (256, 256)).astype(np.float32)
    logits[:40, :40] = rng.choice(np.array([0.0, -0.0, 1e-9, 2.9e-8, 6e-8, 1e-7, -1e-9], np.float32), (40, 40))
    original = (96, 96)  # downsampling keeps many of the tiny values as they are
    upsampled = cv2.resize(logits, original[::-1], interpolation=cv2.INTER_LINEAR)
    with np.errstate(over="ignore"):
        full = 1.0 / (1.0 + np.exp(-upsampled)) > 0.5
    assert np.array_equal(postprocess(logits, (256, 256), original), full)
    assert (upsampled > 0).sum() > full.sum()  # the case the second look is there for


def test_mask_box_is_grown_by_three_and_clipped_to_the_frame() -> None:
    mask = np.zeros((512, 512), bool)
    mask[100:201, 2:300] = True
    assert mask_box(mask, 256).tolist() == [0, 47, 152, 103]
    assert mask_box(np.zeros((10, 10), bool), 256) is None


def test_baseline_mask_box_depends_on_the_label_value_like_the_baseline() -> None:
    # Every other pixel of a row covers a quarter of each 2x2 block; INTER_AREA
    # rounds value/4, so label 1 vanishes while label 5 survives.
    mask = np.zeros((512, 512), bool)
    mask[101, 41:80:2] = True
    assert baseline_mask_box(mask, 1, 256) is None
    assert baseline_mask_box(mask, 5, 256).tolist() == [17, 47, 42, 53]
    assert baseline_mask_box(mask, 256, 256) is None  # uint8 wrap: 256 stored as 0


def test_pixel_extent_covers_whole_pixels_when_enlarging() -> None:
    # A 64-pixel slice is enlarged 4x: pixels 10..20 cover model pixels 40..83,
    # while the prompt-box scaling truncates the far edge to 80.
    assert pixel_extent(np.array([10, 5, 20, 63]), (64, 64), 256).tolist() == [40, 20, 83, 255]
    assert scale_boxes(np.array([[10, 5, 20, 63]]), (64, 64), 256).tolist() == [[40, 20, 80, 252]]
    mask = np.zeros((64, 64), bool)
    mask[5:64, 10:21] = True
    assert mask_box(mask, 256).tolist() == [37, 17, 86, 256]
