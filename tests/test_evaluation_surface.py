"""Surface distances and surface Dice: hand-derived cases, properties, and the DeepMind package."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import surface_distance
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from evaluation.metrics.surface import compute_surface_distances, surface_dice_at_tolerance, validate_spacing

# Surfel areas (unit spacing) of the marching-cubes codes met on a one-slice volume:
# one foreground voxel in the 2x2x2 cell (a corner), two side by side (an edge), four (a face).
CORNER = 0.125 * math.sqrt(3)
EDGE = 0.5 * math.sqrt(2)
FACE = 1.0
# Tolerances are 1e-9, not 1e-12: the organisers' 1e-12 in the surface Dice denominator
# moves small-surface results by up to about 1e-11.


def nsd(gt: np.ndarray, pred: np.ndarray, spacing=(1.0, 1.0, 1.0), tolerance: float = 2.0) -> float:
    """Our surface Dice of two boolean masks."""
    return surface_dice_at_tolerance(compute_surface_distances(gt, pred, spacing), tolerance)


def package_nsd(gt: np.ndarray, pred: np.ndarray, spacing, tolerance: float = 2.0) -> float:
    """The package's surface Dice (np.Inf restored: the package predates numpy 2)."""
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        patch.setattr(np, "Inf", np.inf, raising=False)
        # It calls scipy.ndimage through namespaces scipy now deprecates.
        warnings.simplefilter("ignore", DeprecationWarning)
        distances = surface_distance.compute_surface_distances(gt, pred, spacing)
        return float(surface_distance.compute_surface_dice_at_tolerance(distances, tolerance))


def square(size: int, top: int, left: int, shape=(40, 40)) -> np.ndarray:
    """A one-slice (H, W, 1) volume holding a filled square."""
    mask = np.zeros((*shape, 1), bool)
    mask[top:top + size, left:left + size] = True
    return mask


def cube(size: int, corner: tuple[int, int, int], shape=(40, 40, 40)) -> np.ndarray:
    """A volume holding a filled cube."""
    mask = np.zeros(shape, bool)
    mask[tuple(slice(c, c + size) for c in corner)] = True
    return mask


def blob(rng: np.random.Generator, shape: tuple[int, ...], smooth: float = 2.0) -> np.ndarray:
    """A random smooth blob mask."""
    return ndimage.gaussian_filter(rng.random(shape), smooth) > 0.5


def test_the_package_is_deepminds_surface_distance() -> None:
    assert surface_distance.__version__ == "0.1"
    assert callable(surface_distance.compute_surface_distances)
    assert callable(surface_distance.compute_surface_dice_at_tolerance)
    assert surface_distance.lookup_tables.ENCODE_NEIGHBOURHOOD_3D_KERNEL.shape == (2, 2, 2)


def test_identical_masks_give_one() -> None:
    mask = square(7, 5, 9)
    assert nsd(mask, mask) == pytest.approx(1.0, abs=1e-9)
    assert nsd(cube(5, (3, 4, 5)), cube(5, (3, 4, 5)), (2.5, 0.7, 1.3)) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("shift", [1, 2])
def test_shift_within_tolerance_gives_one(shift: int) -> None:
    # Every surface point has its shifted copy at distance `shift` <= 2 on the other surface.
    assert nsd(square(10, 10, 10), square(10, 10, 10 + shift)) == pytest.approx(1.0, abs=1e-9)
    assert nsd(cube(8, (10, 10, 10)), cube(8, (10, 10 + shift, 10))) == pytest.approx(1.0, abs=1e-9)


def test_square_shifted_by_four_matches_hand_count() -> None:
    # On a one-slice volume every corner point of the square's (n+1)^2 grid is a surface
    # point, twice (the slice's two faces). Shifting by 4 columns, the GT's first two
    # columns of corner points lie 4 and 3 > 2 away from the prediction, and vice versa.
    n = 10
    total = (n - 1) ** 2 * FACE + 4 * (n - 1) * EDGE + 4 * CORNER
    missed = (2 * CORNER + (n - 1) * EDGE) + (2 * EDGE + (n - 1) * FACE)
    expected = 1 - missed / total
    assert nsd(square(n, 10, 10), square(n, 10, 14)) == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx(0.83963, abs=1e-5)


def test_missing_one_of_two_distant_cubes_gives_two_thirds() -> None:
    both = cube(6, (2, 2, 2)) | cube(6, (20, 20, 20))
    first = cube(6, (2, 2, 2))
    # GT surface: half at distance 0, half far away; prediction surface: all at distance 0.
    assert nsd(both, first) == pytest.approx(2 / 3, abs=1e-9)


def test_anisotropic_spacing_pairs_with_array_axes() -> None:
    gt = cube(8, (10, 10, 10))
    shifted_axis0 = cube(8, (13, 10, 10))
    shifted_axis2 = cube(8, (10, 10, 13))
    spacing = (0.5, 1.0, 1.0)
    # Three voxels along axis 0 are 1.5 mm: within tolerance. Along axis 2 they are 3 mm.
    assert nsd(gt, shifted_axis0, spacing) == pytest.approx(1.0, abs=1e-9)
    assert nsd(gt, shifted_axis2, spacing) < 0.9
    assert nsd(gt, shifted_axis0, (1.0, 1.0, 1.0)) < 0.9
    assert nsd(gt, shifted_axis0, (1.0, 1.0, 0.5)) == pytest.approx(nsd(gt, shifted_axis2, (0.5, 1.0, 1.0)), abs=1e-9)


def test_empty_prediction_gives_zero_and_infinite_distances() -> None:
    gt = cube(4, (1, 1, 1), shape=(8, 8, 8))
    distances = compute_surface_distances(gt, np.zeros_like(gt), (1.0, 1.0, 1.0))
    assert np.all(np.isinf(distances.distances_gt_to_pred))
    assert distances.surfel_areas_pred.size == 0
    assert surface_dice_at_tolerance(distances, 2.0) == 0.0
    assert package_nsd(gt, np.zeros_like(gt), (1.0, 1.0, 1.0)) == 0.0


def test_two_empty_masks_give_zero_like_the_organisers() -> None:
    empty = np.zeros((4, 4, 4), bool)
    assert nsd(empty, empty) == 0.0


@pytest.mark.parametrize(
    "gt, pred, spacing",
    [
        (np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 4), bool), (1, 1, 1)),
        (np.zeros((4, 4), bool), np.zeros((4, 4), bool), (1, 1, 1)),
        (np.zeros((4, 4, 4), bool), np.zeros((4, 4, 5), bool), (1, 1, 1)),
        (np.zeros((4, 4, 4), bool), np.zeros((4, 4, 4), bool), (1, 1)),
        (np.zeros((4, 4, 4), bool), np.zeros((4, 4, 4), bool), (1, 0, 1)),
        (np.zeros((4, 4, 4), bool), np.zeros((4, 4, 4), bool), (1, float("nan"), 1)),
    ],
)
def test_bad_input_raises_value_error(gt, pred, spacing) -> None:
    with pytest.raises(ValueError):
        compute_surface_distances(gt, pred, spacing)


def test_validate_spacing_returns_floats() -> None:
    assert validate_spacing(np.array([3, 1, 0.5], np.float32)) == (3.0, 1.0, 0.5)


def test_matches_the_package_on_random_blobs() -> None:
    rng = np.random.default_rng(2024)
    largest = 0.0
    compared = 0
    for trial in range(40):
        one_slice = trial % 2 == 0
        shape = (int(rng.integers(8, 48)), int(rng.integers(8, 48)), 1 if one_slice else int(rng.integers(6, 24)))
        gt, pred = blob(rng, shape), blob(rng, shape)
        if trial % 10 == 9:
            pred = np.zeros_like(pred)
        if not gt.any():
            continue
        spacing = (1.0, 1.0, 1.0) if one_slice else tuple(rng.uniform(0.3, 3.0, 3))
        ours, theirs = nsd(gt, pred, spacing), package_nsd(gt, pred, spacing)
        largest = max(largest, abs(ours - theirs))
        compared += 1
    assert compared >= 30
    assert largest <= 1e-6


masks_3d = arrays(bool, st.tuples(st.integers(2, 7), st.integers(2, 7), st.integers(1, 5)))
spacings = st.tuples(*[st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0])] * 3)


@settings(max_examples=60, deadline=None)
@given(masks_3d, st.data(), spacings)
def test_symmetric_and_bounded(gt: np.ndarray, data: st.DataObject, spacing) -> None:
    pred = data.draw(arrays(bool, gt.shape))
    forward, backward = nsd(gt, pred, spacing), nsd(pred, gt, spacing)
    assert forward == pytest.approx(backward, abs=1e-9)
    assert 0.0 <= forward <= 1.0 + 1e-9


@settings(max_examples=60, deadline=None)
@given(masks_3d, st.data(), spacings, st.sampled_from([0.25, 0.5, 2.0, 4.0]))
def test_scaling_spacing_and_tolerance_together_changes_nothing(gt, data, spacing, factor) -> None:
    # Powers of two scale distances exactly, so no distance crosses the tolerance.
    pred = data.draw(arrays(bool, gt.shape))
    scaled = tuple(s * factor for s in spacing)
    assert nsd(gt, pred, scaled, 2.0 * factor) == pytest.approx(nsd(gt, pred, spacing, 2.0), abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(masks_3d, spacings)
def test_identical_nonempty_masks_give_one_at_any_spacing(mask: np.ndarray, spacing) -> None:
    if mask.any():
        assert nsd(mask, mask, spacing) == pytest.approx(1.0, abs=1e-9)
