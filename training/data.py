"""Slices of challenge-format cases as model-ready training samples, with augmentation.

A 2D case (`imgs` (H, W, 3)) is one sample; a 3D case (`imgs` (D, H, W)) gives one
sample per non-blank slice. Labels come from the sibling `gts` folder when it has
the case; box prompts come from those labels (per slice) or else from the case's
`boxes`. Pre-processing is the baseline's (`inference.transforms`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from casefiles import discover_cases, is_3d, load_arrays
from inference.config import EncoderConfig
from inference.transforms import preprocess, scale_boxes

# The models' input size (every configuration shares it).
INPUT_SIZE = EncoderConfig().input_size
MAX_BOXES = 32


@dataclass(frozen=True)
class SliceRef:
    """One training image: a 2D case (index None) or one slice of a 3D case."""

    path: Path
    gts_path: Path | None
    index: int | None


@dataclass(frozen=True)
class Augment:
    """Random crops, flips, intensity and colour jitter; all drawn from the generator passed per sample.

    A crop keeps `crop_scale` of each side (the model sees its objects larger); colour
    jitter, for (H, W, 3) images only, gives each channel its own gamma and shuffles the
    channels, so a few stained or fundus images stand for many colourings.
    """

    flip: float = 0.5
    gamma: tuple[float, float] = (0.7, 1.5)
    noise_std: float = 4.0
    crop: float = 0.5
    crop_scale: tuple[float, float] = (0.4, 1.0)
    colour: float = 0.5


def discover_slices(inputs: Path, gts: Path | None = None) -> list[SliceRef]:
    """Every sample of a folder of cases; `gts` defaults to a sibling `gts` folder of an `inputs` folder."""
    inputs = Path(inputs)
    if gts is None and (inputs.parent / "gts").is_dir():
        gts = inputs.parent / "gts"
    refs = []
    for path in discover_cases(inputs):
        gts_path = gts / path.name if gts is not None and (gts / path.name).is_file() else None
        if not is_3d(path.name):
            refs.append(SliceRef(path, gts_path, None))
            continue
        volume = load_arrays(path, ["imgs"])["imgs"]
        flat = volume.reshape(volume.shape[0], -1)
        refs += [SliceRef(path, gts_path, int(z)) for z in np.flatnonzero(flat.max(axis=1) > flat.min(axis=1))]
    return refs


def read_slice(ref: SliceRef) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """uint8 image ((H, W) or (H, W, 3)), label map or None, and the (N, 4) case boxes on this slice."""
    arrays = load_arrays(ref.path, ["imgs"], ["boxes"])
    boxes = arrays.get("boxes", np.zeros((0, 4 if ref.index is None else 6)))
    labels = load_arrays(ref.gts_path, ["gts"])["gts"] if ref.gts_path is not None else None
    if ref.index is None:
        return arrays["imgs"], labels, np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    z = ref.index
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 6)
    on_slice = boxes[(boxes[:, 2] <= z) & (z <= boxes[:, 5])][:, [0, 1, 3, 4]]
    return arrays["imgs"][z], None if labels is None else labels[z], on_slice


def crop_boxes(boxes: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    """(N, 4) boxes in a crop's frame, clipped to it; boxes left with no overlap are dropped."""
    moved = boxes - np.array([left, top, left, top])
    moved[:, [0, 2]] = moved[:, [0, 2]].clip(0, width - 1)
    moved[:, [1, 3]] = moved[:, [1, 3]].clip(0, height - 1)
    inside = (boxes[:, 2] >= left) & (boxes[:, 0] < left + width) & (boxes[:, 3] >= top) & (boxes[:, 1] < top + height)
    return moved[inside]


def augment(
    image: np.ndarray, labels: np.ndarray | None, boxes: np.ndarray, aug: Augment, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Crop and flip image, labels and boxes together, then jitter intensities (gamma, colour, noise)."""
    boxes = boxes.copy()
    if rng.random() < aug.crop:
        height, width = (max(int(round(side * rng.uniform(*aug.crop_scale))), 1) for side in image.shape[:2])
        top = int(rng.integers(0, image.shape[0] - height + 1))
        left = int(rng.integers(0, image.shape[1] - width + 1))
        image = image[top : top + height, left : left + width]
        labels = None if labels is None else labels[top : top + height, left : left + width]
        boxes = crop_boxes(boxes, top, left, height, width)
    height, width = image.shape[:2]
    if rng.random() < aug.flip:
        image = image[:, ::-1]
        labels = None if labels is None else labels[:, ::-1]
        boxes[:, [0, 2]] = width - 1 - boxes[:, [2, 0]]
    if rng.random() < aug.flip:
        image = image[::-1]
        labels = None if labels is None else labels[::-1]
        boxes[:, [1, 3]] = height - 1 - boxes[:, [3, 1]]
    # Min-max normalisation undoes any linear change, so jitter non-linearly.
    gamma: float | np.ndarray = rng.uniform(*aug.gamma)
    if image.ndim == 3 and rng.random() < aug.colour:
        gamma = rng.uniform(*aug.gamma, size=3)
        image = image[..., rng.permutation(3)]
    values = 255.0 * (image / 255.0) ** gamma + rng.normal(0.0, rng.uniform(0, aug.noise_std), image.shape)
    image = np.clip(np.round(values), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image), None if labels is None else np.ascontiguousarray(labels), boxes


def label_boxes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) pixel boxes and the label ids of the labels present in a 2D label map."""
    ids = np.unique(labels)
    ids = ids[ids != 0]
    boxes = []
    for label in ids:
        ys, xs = np.nonzero(labels == label)
        boxes.append([xs.min(), ys.min(), xs.max(), ys.max()])
    return np.asarray(boxes, dtype=np.int64).reshape(-1, 4), ids.astype(np.int64)


def to_model_labels(labels: np.ndarray, resized: tuple[int, int]) -> np.ndarray:
    """Label map resized (nearest) to the model's resized frame and zero-padded to 256x256."""
    out = np.zeros((INPUT_SIZE, INPUT_SIZE), dtype=np.int64)
    small = cv2.resize(labels.astype(np.float32), (resized[1], resized[0]), interpolation=cv2.INTER_NEAREST)
    out[: resized[0], : resized[1]] = small.astype(np.int64)
    return out


def jitter_boxes(boxes: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Move each box edge by up to `shift` pixels, keeping boxes ordered and inside the 256 frame."""
    noise = torch.randint(-shift, shift + 1, boxes.shape, generator=generator).to(boxes.dtype)
    moved = (boxes + noise).clamp(0, INPUT_SIZE - 1)
    low = torch.minimum(moved[:, :2], moved[:, 2:])
    high = torch.maximum(moved[:, :2], moved[:, 2:])
    return torch.cat([low, high], dim=1)


def load_sample(ref: SliceRef, aug: Augment | None = None, rng: np.random.Generator | None = None) -> dict:
    """A model-ready sample: image (3, 256, 256), labels (256, 256), boxes (M, 4) in model space, box_labels (M,)."""
    image, labels, boxes = read_slice(ref)
    if aug is not None:
        image, labels, boxes = augment(image, labels, boxes, aug, rng if rng is not None else np.random.default_rng())
    original = image.shape[:2]
    chw, resized = preprocess(image, INPUT_SIZE)
    if labels is not None:
        boxes, box_labels = label_boxes(labels)
        model_labels = to_model_labels(labels, resized)
    else:
        box_labels = np.zeros(len(boxes), dtype=np.int64)
        model_labels = np.zeros((INPUT_SIZE, INPUT_SIZE), dtype=np.int64)
    if len(boxes) > MAX_BOXES:
        # Evenly spaced rather than random, so a sample is the same wherever it is read.
        keep = np.linspace(0, len(boxes) - 1, MAX_BOXES).round().astype(int)
        boxes, box_labels = boxes[keep], box_labels[keep]
    return {
        "image": torch.from_numpy(chw[0]),
        "labels": torch.from_numpy(model_labels),
        "boxes": torch.from_numpy(scale_boxes(boxes, original, INPUT_SIZE).astype(np.float32)).reshape(-1, 4),
        "box_labels": torch.from_numpy(box_labels),
        "has_labels": labels is not None,
    }


class SliceDataset(Dataset):
    """`views` versions of every slice of a 3D case and `views_2d` of every 2D image (default: `views`).

    View 0 is the sample as is; the others are augmented with a generator seeded by
    (seed, view, slice). A few 2D images stand among hundreds of slices, so giving
    them more views keeps them from vanishing from the training mix.
    """

    def __init__(
        self, refs: list[SliceRef], views: int = 1, seed: int = 0, aug: Augment = Augment(), views_2d: int | None = None
    ) -> None:
        self.refs = refs
        self.seed = seed
        self.aug = aug
        per_ref = [views if ref.index is not None or views_2d is None else views_2d for ref in refs]
        self.items = [(view, index) for view in range(max(per_ref, default=0))
                      for index, count in enumerate(per_ref) if view < count]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, item: int) -> dict:
        view, index = self.items[item]
        if view == 0:
            return load_sample(self.refs[index])
        return load_sample(self.refs[index], self.aug, np.random.default_rng([self.seed, view, index]))
