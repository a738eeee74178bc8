"""Box-prompted prediction on one 2D image: encode once, decode every box against it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from inference.backends import Backend
from inference.transforms import postprocess, preprocess, scale_boxes


@dataclass(frozen=True)
class ImageEmbedding:
    """An encoded image and the sizes needed to map masks back to it."""

    embedding: np.ndarray
    original_shape: tuple[int, int]
    resized_shape: tuple[int, int]


class BoxPredictor:
    """Turns images and model-space boxes into full-resolution boolean masks."""

    def __init__(self, backend: Backend, input_size: int = 256, decode_batch: int | None = None) -> None:
        self.backend = backend
        self.input_size = input_size
        # Boxes per decoder call: the backend's measured best unless given.
        self.decode_batch = decode_batch or backend.decode_batch

    def embed(self, image: np.ndarray) -> ImageEmbedding:
        """Encode a uint8 (H, W) grey or (H, W, 3) image."""
        model_input, resized = preprocess(image, self.input_size)
        embedding = self.backend.encode(model_input)
        return ImageEmbedding(embedding, (image.shape[0], image.shape[1]), resized)

    def to_model_space(self, boxes: np.ndarray, original_shape: tuple[int, int]) -> np.ndarray:
        """Scale (N, 4) image-pixel boxes to model space as the baseline does."""
        return scale_boxes(boxes, original_shape, self.input_size)

    def predict(self, image: ImageEmbedding, boxes: np.ndarray) -> Iterator[np.ndarray]:
        """Yield one boolean (H, W) mask per (N, 4) model-space box, in order."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        for start in range(0, len(boxes), self.decode_batch):
            logits = self.backend.decode(image.embedding, boxes[start : start + self.decode_batch])
            for low_res in logits:
                yield postprocess(low_res, image.resized_shape, image.original_shape)


def segment_image(predictor: BoxPredictor, image: np.ndarray, boxes: np.ndarray) -> Iterator[np.ndarray]:
    """2D case: encode the (H, W, 3) image once and yield a mask per (N, 4) pixel box."""
    if len(boxes) == 0:
        return
    embedded = predictor.embed(image)
    yield from predictor.predict(embedded, predictor.to_model_space(boxes, embedded.original_shape))
