"""The sidecar JSON beside a case: everything about the source that the npz files leave out."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from convert.errors import ConvertError
from convert.geometry import Geometry

VERSION = 1
# A list of numbers as json.dumps(indent=...) spreads it, one number a line; written on one line instead.
NUMBER_LIST = re.compile(r"\[\s*((?:-?[\d.eE+-]+,\s*)*-?[\d.eE+-]+)\s*\]")


@dataclass(frozen=True)
class Sidecar:
    """The source of a case and how it was converted.

    `crop_start`/`crop_stop` are the region of the source's array (array order,
    [z,] y, x) that the case holds; `objects` lists, for object k at k - 1, its label
    and, when it came from a label image, its source label value and voxel count.
    """

    case: str
    source: str
    format: str
    modality: str
    geometry: Geometry
    crop_start: tuple[int, ...]
    crop_stop: tuple[int, ...]
    intensity: dict
    objects: tuple[dict, ...]
    boxes: dict
    series_uid: str | None = None

    @property
    def case_shape(self) -> tuple[int, ...]:
        """The spatial shape of the case's arrays: the crop's."""
        return tuple(stop - start for start, stop in zip(self.crop_start, self.crop_stop))

    def as_dict(self) -> dict:
        """JSON-ready content."""
        return {
            "version": VERSION, "case": self.case, "source": self.source, "format": self.format,
            "series_uid": self.series_uid, "modality": self.modality, "geometry": self.geometry.as_dict(),
            "crop": {"start": list(self.crop_start), "stop": list(self.crop_stop)},
            "intensity": self.intensity, "boxes": self.boxes, "objects": list(self.objects),
        }

    def to_json(self) -> str:
        """The file's text."""
        text = json.dumps(self.as_dict(), indent=1)
        return NUMBER_LIST.sub(lambda found: "[" + " ".join(found.group(1).split()) + "]", text) + "\n"


def read_sidecar(path: Path) -> Sidecar:
    """Read a sidecar that `write_sidecar` wrote; ConvertError naming the file otherwise."""
    try:
        data = json.loads(Path(path).read_text())
        if data.get("version") != VERSION:
            raise ConvertError(path, f"sidecar version {data.get('version')!r}, expected {VERSION}")
        return Sidecar(
            case=data["case"], source=data["source"], format=data["format"], modality=data["modality"],
            geometry=Geometry.from_dict(data["geometry"]), crop_start=tuple(data["crop"]["start"]),
            crop_stop=tuple(data["crop"]["stop"]), intensity=data["intensity"], objects=tuple(data["objects"]),
            boxes=data["boxes"], series_uid=data.get("series_uid"),
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise ConvertError(path, f"not a readable sidecar ({type(err).__name__}: {err})") from err
