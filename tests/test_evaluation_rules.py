"""Case scoring with the organisers' rules, checked by hand and against their loop on the package."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from evaluation.metrics.rules import score_case
from evaluation.metrics.surface import compute_surface_distances, surface_dice_at_tolerance
from tests.helpers import organisers_score


def random_labels(rng: np.random.Generator, shape: tuple[int, ...], num_labels: int) -> np.ndarray:
    """A label map of smooth random regions 1..num_labels on background 0."""
    fields = np.stack([ndimage.gaussian_filter(rng.random(shape), 2.0) for _ in range(num_labels + 1)])
    labels = np.argmax(fields, axis=0).astype(np.uint16)
    return labels


def test_identical_masks_score_one() -> None:
    gts = np.zeros((20, 20), np.uint8)
    gts[2:8, 3:9], gts[10:15, 10:18] = 1, 2
    score = score_case(gts, gts.copy(), None)
    assert (score.dsc, score.nsd) == (pytest.approx(1.0), pytest.approx(1.0))
    assert score.label_dsc == (1.0, 1.0)


def test_disjoint_masks_score_zero_dice_and_zero_nsd() -> None:
    gts = np.zeros((10, 20, 20), np.uint8)
    segs = np.zeros_like(gts)
    gts[2:5, 2:6, 2:6] = 1
    segs[2:5, 12:16, 12:16] = 1
    score = score_case(gts, segs, (1.0, 1.0, 1.0))
    assert score.dsc == 0.0 and score.nsd == 0.0


def test_known_dice_of_shifted_cubes() -> None:
    gts = np.zeros((30, 30, 30), np.uint8)
    segs = np.zeros_like(gts)
    gts[5:15, 5:15, 5:15] = 1
    segs[7:17, 5:15, 5:15] = 1
    score = score_case(gts, segs, (1.0, 1.0, 1.0))
    assert score.dsc == pytest.approx(2 * 800 / 2000)
    assert score.nsd == pytest.approx(1.0)  # a 2-voxel shift is within tolerance


def test_nan_when_a_label_is_absent_from_both_and_then_nsd_is_zero() -> None:
    gts = np.zeros((12, 12), np.uint8)
    gts[1:5, 1:5], gts[7:11, 7:11] = 1, 3  # label 2 absent from both
    score = score_case(gts, gts.copy(), None)
    assert score.label_dsc[0] == 1.0 and math.isnan(score.label_dsc[1]) and score.label_dsc[2] == 1.0
    assert math.isnan(score.dsc)
    assert score.nsd == 0.0  # NaN > 0.2 is False in the organisers' script
    assert organisers_score(gts, gts.copy(), None)[1] == 0.0


def test_label_only_in_prediction_counts_as_zero() -> None:
    gts = np.zeros((12, 12), np.uint8)
    segs = np.zeros_like(gts)
    gts[1:5, 1:5], gts[7:11, 7:11] = 1, 3
    segs[1:5, 1:5], segs[7:11, 7:11], segs[0, 11] = 1, 3, 2
    score = score_case(gts, segs, None)
    assert score.label_dsc == (1.0, 0.0, 1.0)
    assert score.dsc == pytest.approx(2 / 3)


def test_nsd_is_zero_when_dice_is_at_most_point_two() -> None:
    gts = np.zeros((9, 9), np.uint8)
    segs = np.zeros_like(gts)
    gts[3:6, 3:6] = 1  # 9 pixels
    segs[4, 4] = 1  # 1 pixel inside: Dice = 2 / 10 = 0.2 exactly
    score = score_case(gts, segs, None)
    assert score.dsc == pytest.approx(0.2)
    assert score.nsd == 0.0
    assert score.label_nsd == (0.0,)
    # The surfaces are within tolerance: without the rule the NSD would be 1.
    distances = compute_surface_distances(gts[..., None] == 1, segs[..., None] == 1, (1.0, 1.0, 1.0))
    assert surface_dice_at_tolerance(distances, 2.0) == pytest.approx(1.0)
    segs[3, 4] = 1  # 2 pixels: Dice = 4 / 11 > 0.2
    assert score_case(gts, segs, None).nsd == pytest.approx(1.0)


def test_labels_above_the_ground_truth_maximum_are_ignored() -> None:
    rng = np.random.default_rng(3)
    gts = random_labels(rng, (30, 30), 3)
    segs = gts.copy()
    segs[segs == 2] = 0
    noisy = segs.copy()
    noisy[gts == 0] = 7
    assert score_case(gts, noisy, None) == score_case(gts, segs, None)


def test_uint8_ground_truth_with_label_255_has_255_labels() -> None:
    gts = np.zeros((20, 20), np.uint8)
    gts[2:6, 2:6] = 255
    score = score_case(gts, gts.copy(), None)
    assert len(score.label_dsc) == 255
    assert math.isnan(score.dsc)


def test_empty_ground_truth_gives_nan_dice_and_zero_nsd() -> None:
    gts = np.zeros((5, 5), np.uint8)
    score = score_case(gts, gts.copy(), None)
    assert math.isnan(score.dsc) and score.nsd == 0.0 and score.label_dsc == ()


def test_spacing_is_paired_with_array_axes_in_stored_order() -> None:
    gts = np.zeros((30, 30, 30), np.uint8)
    segs = np.zeros_like(gts)
    gts[8:18, 8:18, 8:18] = 1
    segs[11:21, 8:18, 8:18] = 1  # 3 voxels along axis 0
    assert score_case(gts, segs, (0.5, 1.0, 1.0)).nsd == pytest.approx(1.0)
    assert score_case(gts, segs, (1.0, 1.0, 0.5)).nsd < 0.9


@pytest.mark.parametrize(
    "gts, segs, spacing",
    [
        (np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8), None),
        (np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8), None),
        (np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8), (1.0, 1.0, 1.0)),
        (-np.ones((4, 4), np.int16), np.zeros((4, 4), np.int16), None),
    ],
)
def test_bad_cases_raise_value_error(gts, segs, spacing) -> None:
    with pytest.raises(ValueError):
        score_case(gts, segs, spacing)


def test_one_label_predicted_empty_is_scored_not_crashed() -> None:
    # The package crashes here under numpy 2 (np.Inf); the organisers' numpy 1 run gave 0.
    rng = np.random.default_rng(5)
    gts = random_labels(rng, (16, 32, 32), 3)
    segs = gts.copy()
    segs[segs == 3] = 0
    score = score_case(gts, segs, (2.0, 0.8, 0.8))
    assert score.label_nsd[2] == 0.0
    assert score.nsd == pytest.approx(organisers_score(gts, segs, (2.0, 0.8, 0.8))[1], abs=1e-6)


def test_matches_the_organisers_loop_on_random_label_maps() -> None:
    rng = np.random.default_rng(11)
    largest = 0.0
    for trial in range(12):
        is_2d = trial % 2 == 0
        shape = (48, 40) if is_2d else (12, 28, 24)
        gts = random_labels(rng, shape, int(rng.integers(1, 5)))
        # Predictions: the truth shifted, eroded or relabelled, so Dice spans 0..1.
        segs = np.roll(gts, int(rng.integers(-4, 5)), axis=int(rng.integers(0, gts.ndim)))
        segs[rng.random(shape) < 0.05] = 0
        spacing = None if is_2d else tuple(rng.uniform(0.4, 3.0, 3))
        ours = score_case(gts, segs, spacing)
        dsc, nsd = organisers_score(gts, segs, spacing)
        assert ours.dsc == dsc  # same integer counts and divisions: bit for bit
        largest = max(largest, abs(ours.nsd - nsd))
    assert largest <= 1e-6


label_maps_2d = arrays(np.uint8, st.tuples(st.integers(2, 12), st.integers(2, 12)), elements=st.integers(0, 3))


@settings(max_examples=50, deadline=None)
@given(label_maps_2d, st.data())
def test_2d_path_is_the_one_slice_volume_rule(gts: np.ndarray, data: st.DataObject) -> None:
    segs = data.draw(arrays(np.uint8, gts.shape, elements=st.integers(0, 3)))
    flat = score_case(gts, segs, None)
    volume = score_case(gts[..., None], segs[..., None], (1.0, 1.0, 1.0))
    np.testing.assert_equal((flat.dsc, flat.nsd), (volume.dsc, volume.nsd))


@settings(max_examples=50, deadline=None)
@given(label_maps_2d, st.data())
def test_scores_are_bounded_and_dice_is_symmetric(gts: np.ndarray, data: st.DataObject) -> None:
    segs = data.draw(arrays(np.uint8, gts.shape, elements=st.integers(0, 3)))
    forward = score_case(gts, segs, None)
    if not math.isnan(forward.dsc):
        assert 0.0 <= forward.dsc <= 1.0 and 0.0 <= forward.nsd <= 1.0 + 1e-9
    if gts.max() == segs.max():
        backward = score_case(segs, gts, None)
        np.testing.assert_allclose(backward.label_dsc, forward.label_dsc)
        np.testing.assert_allclose(backward.nsd, forward.nsd, atol=1e-9)
