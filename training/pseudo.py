"""Label maps made by classical image processing, for images that ship without annotations.

They give the distillation real object-shaped box prompts and give the held-out
cases something to score against; they are not expert annotations.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """The threshold that maximises the between-class variance of a histogram."""
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(hist)
    weight_high = weight_low[-1] - weight_low
    mean_low = np.cumsum(hist * centres) / np.maximum(weight_low, 1)
    mean_high = (np.sum(hist * centres) - np.cumsum(hist * centres)) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(centres[int(np.argmax(between))])


def object_labels(grey: np.ndarray, max_objects: int, min_fraction: float) -> np.ndarray:
    """Label map (uint16, 1..K by decreasing size) of the largest connected objects.

    Objects are the pixels on the minority side of Otsu's threshold, so dark
    nuclei on a bright slide and a bright head on a dark background both count
    as foreground; small holes are filled and specks under `min_fraction` of the
    image dropped.
    """
    threshold = otsu_threshold(grey)
    foreground = grey > threshold
    if foreground.mean() > 0.5:
        foreground = ~foreground
    foreground = ndimage.binary_opening(foreground, iterations=1)
    foreground = ndimage.binary_fill_holes(foreground)
    components, count = ndimage.label(foreground)
    sizes = np.bincount(components.ravel(), minlength=count + 1)[1:]
    keep = [i + 1 for i in np.argsort(-sizes, kind="stable")[:max_objects] if sizes[i] >= min_fraction * grey.size]
    labels = np.zeros(grey.shape, dtype=np.uint16)
    for new, old in enumerate(keep, 1):
        labels[components == old] = new
    return labels


def boxes_of(labels: np.ndarray) -> np.ndarray:
    """Bounding boxes of labels 1..max in challenge order: (N, 4) x0, y0, x1, y1 or (N, 6) x0, y0, z0, x1, y1, z1."""
    rows = []
    for label in range(1, int(labels.max()) + 1):
        where = np.argwhere(labels == label)
        low, high = where.min(axis=0), where.max(axis=0)
        # Arrays are (y, x) or (z, y, x); boxes list x first.
        rows.append([*low[::-1], *high[::-1]])
    width = 2 * labels.ndim
    return np.asarray(rows, dtype=np.int64).reshape(-1, width)
