"""Dice overlap of two masks, the one formula used for scoring, parity checks and benchmarks."""

from __future__ import annotations

import numpy as np


def dice(a: np.ndarray, b: np.ndarray, both_empty: float = 1.0) -> float:
    """2 |A and B| / (|A| + |B|) of two boolean masks of one shape; `both_empty` where both are empty.

    The counts are integers and the division is the only rounding, as in the
    challenge's own scoring.
    """
    if a.shape != b.shape:
        raise ValueError(f"masks of different shapes: {a.shape} and {b.shape}")
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    if total == 0:
        return both_empty
    return 2 * int(np.count_nonzero(a & b)) / total


def label_dice(a: np.ndarray, b: np.ndarray) -> list[float]:
    """Dice per label 1..the largest label of two label maps (1.0 where a label is absent from both)."""
    largest = int(max(a.max(initial=0), b.max(initial=0)))
    return [dice(a == label, b == label) for label in range(1, largest + 1)]
