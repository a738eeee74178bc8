"""Where an image lies in space: size, spacing, origin and direction, as ITK states them (x first)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

# Grids that differ by less than this fraction of a voxel (origin, spacing) or
# this much in a direction cosine are the same grid: formats store geometry at
# different precisions (NIfTI in float32, DICOM as decimal strings).
VOXEL_TOLERANCE = 1e-3
DIRECTION_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Geometry:
    """An image grid in ITK's order: size, spacing and origin are (x, y[, z]); direction is row-major."""

    size: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]

    @classmethod
    def of(cls, image: sitk.Image) -> Geometry:
        """The grid of a SimpleITK image."""
        return cls(tuple(int(n) for n in image.GetSize()), tuple(image.GetSpacing()), tuple(image.GetOrigin()),
                   tuple(image.GetDirection()))

    @classmethod
    def from_dict(cls, data: dict) -> Geometry:
        """The grid as `as_dict` wrote it."""
        return cls(tuple(int(n) for n in data["size"]), tuple(float(v) for v in data["spacing"]),
                   tuple(float(v) for v in data["origin"]), tuple(float(v) for v in data["direction"]))

    def as_dict(self) -> dict[str, list]:
        """JSON-ready lists (floats keep every digit)."""
        return {"size": list(self.size), "spacing": list(self.spacing), "origin": list(self.origin),
                "direction": list(self.direction)}

    @property
    def array_shape(self) -> tuple[int, ...]:
        """The shape of the image's numpy array: ([z,] y, x)."""
        return self.size[::-1]

    @property
    def array_spacing(self) -> tuple[float, ...]:
        """The spacing in array order ([z,] y, x): ITK's spacing reversed."""
        return self.spacing[::-1]

    def stamp(self, image: sitk.Image) -> sitk.Image:
        """Give `image` (of this size) this grid's spacing, origin and direction; return it."""
        if tuple(image.GetSize()) != self.size:
            raise ValueError(f"an image of size {image.GetSize()} cannot take the grid of size {self.size}")
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image

    def matches(self, other: Geometry) -> bool:
        """Whether both are the same grid, up to the precision formats store geometry at."""
        if self.size != other.size:
            return False
        spacing = np.asarray(self.spacing)
        return bool(
            np.allclose(spacing, other.spacing, rtol=0, atol=VOXEL_TOLERANCE * spacing.min())
            and np.allclose(self.origin, other.origin, rtol=0, atol=VOXEL_TOLERANCE * spacing.min())
            and np.allclose(self.direction, other.direction, rtol=0, atol=DIRECTION_TOLERANCE)
        )

    def describe(self) -> str:
        """One line for error messages: size, spacing, origin, direction."""
        def numbers(values: tuple) -> str:
            return "(" + ", ".join(f"{v:g}" for v in values) + ")"

        return (f"size {numbers(self.size)}, spacing {numbers(self.spacing)}, origin {numbers(self.origin)}, "
                f"direction {numbers(self.direction)}")
