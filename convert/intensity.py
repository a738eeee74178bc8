"""Intensities to uint8 as the challenge organizers prepared their data: CT windows, percentiles for the rest."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True)
class Window:
    """A CT display window in Hounsfield units."""

    level: float
    width: float

    @property
    def low(self) -> float:
        """The HU value shown black."""
        return self.level - self.width / 2

    @property
    def high(self) -> float:
        """The HU value shown white."""
        return self.level + self.width / 2


# (level, width) in HU. soft-tissue is the organizers' default; the others are the
# usual values of Radiopaedia's "Windowing (CT)" article (see docs/convert.md).
WINDOW_PRESETS = {
    "soft-tissue": Window(40, 400),
    "lung": Window(-600, 1500),
    "bone": Window(400, 1800),
    "brain": Window(40, 80),
    "mediastinum": Window(50, 350),
    "liver": Window(30, 150),
}
DEFAULT_WINDOW = WINDOW_PRESETS["soft-tissue"]


def parse_window(text: str) -> Window:
    """A preset name (`lung`) or `LEVEL,WIDTH` (`-600,1500`); ValueError otherwise."""
    if text in WINDOW_PRESETS:
        return WINDOW_PRESETS[text]
    parts = text.split(",")
    try:
        level, width = (float(part) for part in parts)
    except ValueError:
        raise ValueError(f"window {text!r}: give LEVEL,WIDTH in HU or one of {', '.join(WINDOW_PRESETS)}") from None
    if not width > 0:
        raise ValueError(f"window {text!r}: the width must be above 0")
    return Window(level, width)


def window_uint8(values: np.ndarray, window: Window) -> np.ndarray:
    """Clip to the window, scale (x - low) / width * 255 and truncate to uint8 (as the organizers' np.uint8 cast)."""
    scaled = np.clip(values.astype(np.float64), window.low, window.high)
    scaled -= window.low
    scaled /= window.width  # divided first, as the organizers did: the top of the window is exactly 255
    scaled *= 255.0
    return scaled.astype(np.uint8)


def percentile_uint8(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Clip to the 0.5 and 99.5 percentiles of the values above 0, scale to 0..255, keep 0 as 0; also the bounds.

    Scaling is (x - low) / (high - low) * 255, truncated to uint8 as the organizers did.
    """
    foreground = values > 0
    if not foreground.any():
        raise ValueError("no value above 0: the percentile rule has nothing to scale")
    low, high = (float(p) for p in np.percentile(values[foreground], PERCENTILES))
    scaled = np.clip(values.astype(np.float64), low, high)
    scaled -= low
    scaled /= max(high - low, 1e-8)
    scaled *= 255.0
    scaled[values == 0] = 0
    return scaled.astype(np.uint8), low, high


def volume_uint8(volume: np.ndarray, is_ct: bool, window: Window) -> tuple[np.ndarray, dict]:
    """A scalar (D, H, W) volume as uint8, with how it was scaled: CT by the window, the rest by percentiles."""
    if is_ct:
        return window_uint8(volume, window), {"rule": "window", "level": window.level, "width": window.width}
    scaled, low, high = percentile_uint8(volume)
    return scaled, {"rule": "percentile", "low": low, "high": high}


def picture_rgb(picture: np.ndarray, is_ct: bool, window: Window) -> tuple[np.ndarray, dict]:
    """A 2D image, (H, W) or (H, W, C), as uint8 RGB (H, W, 3), with how it was scaled.

    uint8 is kept (grey copied to three channels, an alpha channel dropped); CT in
    HU goes through the window; deeper grey or colour images through the percentile rule.
    """
    if picture.ndim == 3:
        channels = picture.shape[2]
        if channels not in (1, 2, 3, 4):
            raise ValueError(f"a 2D image with {channels} components per pixel: expected grey or RGB")
        picture = picture[..., 0] if channels <= 2 else picture[..., :3]
    if picture.dtype == np.uint8:
        scaled, record = picture, {"rule": "kept"}
    else:
        scaled, record = volume_uint8(picture, is_ct, window)
    if scaled.ndim == 2:
        scaled = np.repeat(scaled[..., None], 3, axis=2)
    return np.ascontiguousarray(scaled), record
