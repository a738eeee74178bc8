"""The label map of a case: uint16, background 0, box k paints label k, a later box wins."""

from __future__ import annotations

import numpy as np

MAX_LABEL = int(np.iinfo(np.uint16).max)


def new_label_map(shape: tuple[int, ...]) -> np.ndarray:
    """An empty (all background) uint16 label map of `shape`."""
    return np.zeros(shape, dtype=np.uint16)


def paint(label_map: np.ndarray, mask: np.ndarray, label: int) -> None:
    """Set the pixels of ``mask`` to ``label`` in place: the compositing rule of the challenge.

    Object k (box k, 1-based in file order) gets value k and background stays 0.
    Where objects overlap the later box wins, so callers paint in box order and
    each call overwrites whatever earlier boxes left under its mask.
    """
    _check_paint(label_map, mask, label)
    label_map[mask] = label


def paint_over_earlier(label_map: np.ndarray, mask: np.ndarray, label: int) -> None:
    """Like `paint`, but in any order: pixels a later box (a larger label) holds keep it.

    Painting every box's masks this way, in whatever order they come, gives the
    label map that painting them in box order with `paint` gives.
    """
    _check_paint(label_map, mask, label)
    label_map[mask & (label_map < label)] = label


def _check_paint(label_map: np.ndarray, mask: np.ndarray, label: int) -> None:
    """Reject a non-boolean or mis-shaped mask and a label outside 1..MAX_LABEL."""
    if mask.dtype != np.bool_:
        raise ValueError(f"mask must be boolean, got {mask.dtype}")
    if mask.shape != label_map.shape:
        raise ValueError(f"mask shape {mask.shape} != label map shape {label_map.shape}")
    if not 1 <= label <= MAX_LABEL:
        raise ValueError(f"label {label} outside 1..{MAX_LABEL}")


def as_uint16_labels(name: str, segs: np.ndarray) -> np.ndarray:
    """`segs` as uint16, or ValueError naming the case when it is not an integer map with labels in 0..MAX_LABEL."""
    if segs.dtype.kind not in "iub":
        raise ValueError(f"{name}: segs must be an integer label map, got {segs.dtype}")
    if segs.size and (segs.min() < 0 or segs.max() > MAX_LABEL):
        raise ValueError(
            f"{name}: labels must lie in 0..{MAX_LABEL} to fit uint16, "
            f"got {segs.min()}..{segs.max()}"
        )
    return segs.astype(np.uint16, copy=False)
