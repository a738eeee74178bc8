"""Real-size cases from real images (the demo's pinned wheels), for measuring memory on large inputs.

- 3D: the whole MNI152 T1 brain template, resampled to a CT-sized 300 x 512 x 512
  volume, with six boxes around real structures (the brain, each hemisphere, the
  white matter, the posterior fossa, the cerebrum above the ventricles). Their
  middle slices are far apart, so the downward sweep needs more slice embeddings
  than the slice cache's budget holds;
- 2D: the 2018 Data Science Bowl nuclei image tiled 2 x 2 and scaled up to
  2048 x 2048, with 300 of its real nuclei boxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from common.label_boxes import label_boxes
from demo.build import write_input
from demo.sources import TISSUE_THRESHOLD, mask_bounds, nuclei_2d, ras_to_dhw, read_nifti, window_mr_uint8
from demo.wheels import NILEARN, STARDIST, default_cache_dir, fetch_wheel

VOLUME_SHAPE = (300, 512, 512)
QUICK_DEPTH = 60
NUCLEI_TILES, NUCLEI_SCALE, NUCLEI_BOXES = 2, 2, 300
# Margin (voxels) of background kept around the brain.
MARGIN = 8


@dataclass(frozen=True)
class LargeCase:
    """A challenge input case: uint8 image, boxes in the challenge layout, optional spacing."""

    name: str
    image: np.ndarray
    boxes: np.ndarray
    spacing: tuple[float, float, float] | None = None

    def write(self, folder: Path) -> Path:
        """Write the case as `folder/name` (imgs, boxes[, spacing])."""
        return write_input(folder, self.name, self.image, self.boxes, self.spacing)


def brain_structures(nilearn_wheel: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """The MNI152 T1 template and six structure masks, all (D, H, W).

    The brain, each hemisphere (cut at the midline, x = 0), the white matter, the
    posterior fossa (the cerebellum: behind y = -40 and below z = -25 MNI mm) and
    the cerebrum above the lateral ventricles (z > 40 mm).
    """
    t1, affine = read_nifti(nilearn_wheel, "t1")
    grey = read_nifti(nilearn_wheel, "gm")[0] > TISSUE_THRESHOLD
    white = read_nifti(nilearn_wheel, "wm")[0] > TISSUE_THRESHOLD
    x, y, z = (affine[axis, axis] * np.arange(n) + affine[axis, 3] for axis, n in enumerate(t1.shape))
    x, y, z = x[:, None, None], y[None, :, None], z[None, None, :]
    tissue = grey | white
    masks = [tissue, tissue & (x < 0), tissue & (x >= 0), white, tissue & (y < -40) & (z < -25), tissue & (z > 40)]
    return ras_to_dhw(t1), [ras_to_dhw(mask) for mask in masks]


def brain_volume_case(nilearn_wheel: Path, depth: int, name: str = "3DBox_MR_9001.npz") -> LargeCase:
    """The T1 brain, cropped around the brain and resampled to (depth, 512, 512), with its six structure boxes."""
    t1, masks = brain_structures(nilearn_wheel)
    low, high = mask_bounds(t1 > 0, MARGIN)
    crop = np.s_[low[0] : high[0], low[1] : high[1], low[2] : high[2]]
    image = window_mr_uint8(t1[crop])
    boxes = np.concatenate([label_boxes(mask[crop].astype(np.uint16)) for mask in masks])
    side = VOLUME_SHAPE[1]
    plane_scale = side / max(image.shape[1:])
    # Keep the in-plane aspect: scale the longer side to 512 and centre it on a zero background.
    offsets = [(side - round(n * plane_scale)) // 2 for n in image.shape[1:]]
    scales = (depth / image.shape[0], plane_scale, plane_scale)
    volume = resample(image, depth, plane_scale, offsets)
    spacing = tuple(1.0 / s for s in scales)
    return LargeCase(name, volume, scale_boxes(boxes, scales, (0, *offsets), volume.shape), spacing)


def resample(image: np.ndarray, depth: int, plane_scale: float, offsets: list[int]) -> np.ndarray:
    """Linear resampling of a (D, H, W) uint8 volume to `depth` slices and square 512-pixel slices."""
    _, height, width = image.shape
    deep = np.stack([cv2.resize(image[:, row, :], (width, depth), interpolation=cv2.INTER_LINEAR)
                     for row in range(height)], axis=1)
    h, w = round(height * plane_scale), round(width * plane_scale)
    side = VOLUME_SHAPE[1]
    volume = np.zeros((depth, side, side), dtype=np.uint8)
    for z, plane in enumerate(deep):
        volume[z, offsets[0] : offsets[0] + h, offsets[1] : offsets[1] + w] = cv2.resize(
            plane, (w, h), interpolation=cv2.INTER_LINEAR)
    return volume


def scale_boxes(
    boxes: np.ndarray, scales: tuple[float, ...], offsets: tuple[int, ...], shape: tuple[int, ...]
) -> np.ndarray:
    """Inclusive (N, 2k) boxes (x first; `scales`, `offsets`, `shape` array order) covering the scaled pixels."""
    k = len(shape)
    scale = np.array(scales[::-1])
    offset = np.array(offsets[::-1])
    low = np.floor(boxes[:, :k] * scale).astype(np.int64) + offset
    high = np.ceil((boxes[:, k:] + 1) * scale).astype(np.int64) - 1 + offset
    return np.concatenate([low, np.minimum(high, np.array(shape[::-1]) - 1)], axis=1)


def nuclei_case(stardist_wheel: Path, name: str = "2DBox_Microscope_9002.npz") -> LargeCase:
    """The nuclei image tiled and scaled up, with `NUCLEI_BOXES` of its real nuclei boxes spread over the tiles."""
    demo = nuclei_2d(stardist_wheel, name)
    height, width = demo.gts.shape
    tiled = np.tile(demo.image, (NUCLEI_TILES, NUCLEI_TILES, 1))
    image = cv2.resize(tiled, None, fx=NUCLEI_SCALE, fy=NUCLEI_SCALE, interpolation=cv2.INTER_LINEAR)
    one_tile = label_boxes(demo.gts)
    boxes = np.concatenate([one_tile + [col * width, row * height] * 2
                            for row in range(NUCLEI_TILES) for col in range(NUCLEI_TILES)])
    keep = np.linspace(0, len(boxes) - 1, NUCLEI_BOXES).round().astype(int)
    scales = (NUCLEI_SCALE, NUCLEI_SCALE)
    return LargeCase(name, image, scale_boxes(boxes[keep], scales, (0, 0), image.shape[:2]))


def build_cases(depth: int, cache_dir: Path | None = None) -> list[LargeCase]:
    """The 3D case with `depth` slices and the 2D case, from the demo's pinned wheels."""
    cache_dir = cache_dir or default_cache_dir()
    return [brain_volume_case(fetch_wheel(NILEARN, cache_dir), depth), nuclei_case(fetch_wheel(STARDIST, cache_dir))]
