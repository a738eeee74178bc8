"""The typical case mix: how much each case weighs in a geometric-mean speed-up."""

from __future__ import annotations

import math

# Most challenge cases hold one object: their share of the typical mix's weighted geometric mean.
ONE_OBJECT_SHARE = 0.75


def weighted_geomean(values: list[float], weights: list[float]) -> float:
    """exp of the weighted mean of the logarithms."""
    return math.exp(sum(w * math.log(v) for v, w in zip(values, weights)) / sum(weights))


def case_weights(classes: dict[str, str], names: list[str]) -> list[float]:
    """Each case's weight: one-object cases share ONE_OBJECT_SHARE of the mix, the others the rest; equal weights
    where the mix has only one kind (or `classes` is empty, as for the demo cases)."""
    kinds = [classes.get(name) == "one" for name in names]
    ones = sum(kinds)
    if ones in (0, len(names)):
        return [1.0] * len(names)
    return [ONE_OBJECT_SHARE / ones if one else (1 - ONE_OBJECT_SHARE) / (len(names) - ones) for one in kinds]


def is_one_object_3d(name: str, objects: str | None) -> bool:
    """Whether a case of the mix (`objects`: its class) is a one-object 3D case."""
    return objects == "one" and name.startswith("3D")
