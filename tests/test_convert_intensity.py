"""Intensities to uint8 as the organizers prepared them: CT windows and the percentile rule, against hand values."""

from __future__ import annotations

import numpy as np
import pytest

from convert.intensity import WINDOW_PRESETS, Window, parse_window, percentile_uint8, picture_rgb, volume_uint8
from tests.convert_data import histology_rgb, mni_volume, nuclei_2d


def test_the_default_window_maps_hounsfield_units_as_worked_out_by_hand() -> None:
    # Level 40, width 400: -160 HU is black, 240 HU white, 255 / 400 grey levels per HU, truncated.
    hu = np.array([-1000, -160, -100, 40, 239, 240, 3000], dtype=np.int16)
    scaled, record = volume_uint8(hu, is_ct=True, window=WINDOW_PRESETS["soft-tissue"])
    assert scaled.tolist() == [0, 0, 38, 127, 254, 255, 255]
    assert scaled.dtype == np.uint8
    assert record == {"rule": "window", "level": 40, "width": 400}


def test_a_lung_window_keeps_air_and_lung_apart() -> None:
    # Level -600, width 1500: -1350 .. 150 HU. air (-1000) 350 / 1500 * 255 = 59.5, lung (-700) 110.5, water (0) 229.5.
    scaled, _ = volume_uint8(np.array([-1000, -700, 0]), is_ct=True, window=parse_window("lung"))
    assert scaled.tolist() == [59, 110, 229]


@pytest.mark.parametrize(("text", "window"), [("lung", Window(-600, 1500)), ("bone", Window(400, 1800)),
                                              ("brain", Window(40, 80)), ("-600,1500", Window(-600, 1500)),
                                              ("50.5,350", Window(50.5, 350))])
def test_windows_are_named_or_given_as_level_and_width(text: str, window: Window) -> None:
    assert parse_window(text) == window


@pytest.mark.parametrize("text", ["lungs", "40", "40,0", "40,-5", "a,b"])
def test_a_bad_window_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="window"):
        parse_window(text)


def test_the_percentile_rule_as_worked_out_by_hand() -> None:
    # Foreground 1..200: numpy's linear percentiles are 1 + 0.005 * 199 = 1.995 and 1 + 0.995 * 199 = 199.005.
    values = np.concatenate([np.zeros(10), np.arange(1, 201), [-5]])
    scaled, low, high = percentile_uint8(values)
    assert (low, high) == pytest.approx((1.995, 199.005))
    by_value = dict(zip(values.tolist(), scaled.tolist()))
    assert by_value[0] == 0 and by_value[-5] == 0  # zeros stay zero, below the low bound is black
    assert by_value[1] == 0 and by_value[200] == 255 and by_value[199] == 254
    assert by_value[100] == 126  # (100 - 1.995) / 197.01 * 255 = 126.85, truncated


def test_the_percentile_rule_on_a_real_mr_volume() -> None:
    import SimpleITK as sitk

    t1 = sitk.GetArrayFromImage(mni_volume().image).astype(np.float64)
    scaled, record = volume_uint8(t1, is_ct=False, window=WINDOW_PRESETS["soft-tissue"])
    low, high = np.percentile(t1[t1 > 0], [0.5, 99.5])
    assert record == {"rule": "percentile", "low": low, "high": high}
    expected = np.floor((np.clip(t1, low, high) - low) / (high - low) * 255)
    expected[t1 == 0] = 0
    assert np.array_equal(scaled, expected.astype(np.uint8))
    assert scaled[t1 == 0].max() == 0 and scaled.max() == 255


def test_an_empty_volume_has_nothing_to_scale() -> None:
    with pytest.raises(ValueError, match="no value above 0"):
        percentile_uint8(np.zeros((3, 4, 5)))


def test_pictures_uint8_rgb_is_kept_and_grey_goes_to_three_channels() -> None:
    rgb = histology_rgb()
    kept, record = picture_rgb(rgb, is_ct=False, window=WINDOW_PRESETS["soft-tissue"])
    assert np.array_equal(kept, rgb) and record == {"rule": "kept"}
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 7, np.uint8)], axis=2)
    assert np.array_equal(picture_rgb(rgba, False, WINDOW_PRESETS["soft-tissue"])[0], rgb)
    grey = rgb[..., 1]
    assert np.array_equal(picture_rgb(grey, False, WINDOW_PRESETS["soft-tissue"])[0], np.stack([grey] * 3, axis=2))


def test_a_deeper_grey_picture_goes_through_the_percentile_rule() -> None:
    image, _ = nuclei_2d()
    assert image.dtype == np.uint16
    scaled, record = picture_rgb(image, is_ct=False, window=WINDOW_PRESETS["soft-tissue"])
    assert scaled.shape == image.shape + (3,)
    assert np.array_equal(scaled[..., 0], percentile_uint8(image)[0]) and record["rule"] == "percentile"
    assert (scaled[..., 0] == scaled[..., 2]).all()
