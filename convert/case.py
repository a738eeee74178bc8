"""A scan (and its labels or boxes) to a challenge case: `imgs`, `boxes`, `spacing`, `gts` and the sidecar."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from common.label_boxes import label_boxes
from convert.boxes import crop_around, jitter_boxes, read_box_file
from convert.dicom import challenge_modality
from convert.errors import ConvertError
from convert.geometry import Geometry
from convert.intensity import DEFAULT_WINDOW, Window, picture_rgb, volume_uint8
from convert.naming import case_name, resolve_modality
from convert.objects import ObjectMode, find_objects, integer_labels
from convert.readers import Scan, read_scan
from convert.sidecar import Sidecar


@dataclass(frozen=True)
class ConvertOptions:
    """How to convert: the case's modality and name, the CT window, objects, box jitter, DICOM series, crop."""

    modality: str | None = None
    name: str | None = None
    window: Window = DEFAULT_WINDOW
    objects: ObjectMode = ObjectMode.LABELS
    min_size: int | None = None  # instances: default 100 voxels in 3D, 10 pixels in 2D
    box_jitter: int = 0  # pixels of the 256-pixel model scale, per side
    seed: int | None = None
    series: str | None = None  # a DICOM series folder: the SeriesInstanceUID to read
    crop_margin: int | None = None  # crop to the boxes grown by this many voxels; None: no crop


@dataclass(frozen=True)
class Case:
    """A converted case in memory: the arrays of its npz files and its sidecar."""

    name: str
    imgs: np.ndarray
    boxes: np.ndarray
    spacing: tuple[float, ...] | None  # 3D only, array order (z, y, x)
    gts: np.ndarray | None
    sidecar: Sidecar = field(repr=False)


def is_picture(geometry: Geometry) -> bool:
    """Whether an image is a 2D case: two dimensions, or three with a single slice (a DICOM picture)."""
    return len(geometry.size) == 2 or geometry.size[2] == 1


def prepare_case(source: Path, labels: Path | None, boxes_file: Path | None, options: ConvertOptions) -> Case:
    """Read and convert a scan with its label image or its box file; nothing is written.

    Every check happens here, so a ConvertError (naming the file and the problem)
    comes before any file of the case exists.
    """
    if (labels is None) == (boxes_file is None):
        raise ConvertError(source, "give a label image or a box file (one of them)")
    scan = read_scan(source, options.series)
    geometry = Geometry.of(scan.image)
    kind = "2D" if is_picture(geometry) else "3D"
    try:
        code = challenge_modality(scan.modality_code) if scan.modality_code else None
        modality = resolve_modality(options.modality, options.name, code)
        name = case_name(kind, modality, Path(source), options.name)
        imgs, intensity = _model_image(scan, kind, modality == "CT", options.window)
    except ValueError as err:
        raise ConvertError(source, str(err)) from err
    plane = imgs.shape[:2] if kind == "2D" else imgs.shape
    rng = np.random.default_rng(options.seed)
    gts = None
    if labels is not None:
        gts, objects = _objects(scan, Path(labels), kind, options)
        boxes = label_boxes(gts, len(objects))
        provenance = {"from": "labels", "objects": options.objects.value}
    else:
        boxes = read_box_file(Path(boxes_file), scan.image)  # type: ignore[arg-type]
        if kind == "2D" and boxes.shape[1] == 6:  # a one-slice volume: z is 0
            boxes = boxes[:, [0, 1, 3, 4]]
        objects = [{"label": k} for k in range(1, len(boxes) + 1)]
        provenance = {"from": "file", "file": str(boxes_file)}
    if options.box_jitter:
        boxes = jitter_boxes(boxes, plane, options.box_jitter, rng)
    provenance.update(jitter=options.box_jitter, seed=options.seed)
    start, stop = (0,) * len(plane), plane
    if options.crop_margin is not None:
        start, stop = crop_around(boxes, plane, options.crop_margin)
        region = tuple(slice(a, b) for a, b in zip(start, stop))
        imgs = imgs[region]
        gts = None if gts is None else gts[region]
        boxes = boxes - np.tile(start[::-1], 2)
    for entry, box in zip(objects, boxes):
        entry["box"] = box.tolist()
    sidecar = Sidecar(name, str(source), scan.format, modality, geometry, tuple(start), tuple(stop), intensity,
                      tuple(objects), provenance, scan.series_uid)
    spacing = geometry.array_spacing if kind == "3D" else None
    return Case(name, np.ascontiguousarray(imgs), boxes, spacing,
                None if gts is None else np.ascontiguousarray(gts), sidecar)


def _same_grid(labels: Geometry, image: Geometry) -> bool:
    """Whether a label image lies on the image's grid; a 2D file (no geometry) fits a one-slice volume of its size."""
    if len(labels.size) != len(image.size):
        return is_picture(labels) and is_picture(image) and labels.size[:2] == image.size[:2]
    return labels.matches(image)


def _model_image(scan: Scan, kind: str, is_ct: bool, window: Window) -> tuple[np.ndarray, dict]:
    """The uint8 image of the case: RGB (H, W, 3) for 2D, (D, H, W) for 3D; and how it was scaled."""
    array = sitk.GetArrayFromImage(scan.image)
    if kind == "2D":
        return picture_rgb(array[0] if scan.image.GetDimension() == 3 else array, is_ct, window)
    components = scan.image.GetNumberOfComponentsPerPixel()
    if components != 1:
        raise ValueError(f"a volume with {components} components per voxel: only scalar volumes can be converted")
    return volume_uint8(array, is_ct, window)


def _objects(scan: Scan, labels: Path, kind: str, options: ConvertOptions) -> tuple[np.ndarray, list[dict]]:
    """The `gts` map of the label image and, per object, its source label value and voxel count."""
    label_scan = read_scan(labels)
    image_grid, label_grid = Geometry.of(scan.image), Geometry.of(label_scan.image)
    if not _same_grid(label_grid, image_grid):
        raise ConvertError(labels, f"the label image's grid ({label_grid.describe()}) differs from the image's "
                                   f"{scan.path} ({image_grid.describe()})")
    if label_scan.image.GetNumberOfComponentsPerPixel() != 1:
        raise ConvertError(labels, "not a label image: it has several components per voxel")
    array = sitk.GetArrayFromImage(label_scan.image)
    if kind == "2D" and array.ndim == 3:
        array = array[0]
    try:
        found = find_objects(integer_labels(array), options.objects, options.min_size)
    except ValueError as err:
        raise ConvertError(labels, str(err)) from err
    objects = [{"label": k, "source_label": value, "voxels": voxels}
               for k, (value, voxels) in enumerate(zip(found.source_labels, found.voxels), 1)]
    return found.gts, objects
