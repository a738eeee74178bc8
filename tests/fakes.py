"""A scripted stand-in backend for unit tests: records calls, 'segments' the prompt box."""

from __future__ import annotations

import numpy as np


class BoxEchoBackend:
    """Encoder returns a fresh token per call; decoder returns logits that are positive
    inside the prompt box grown by `grow` model pixels (or nowhere if `empty`)."""

    def __init__(self, grow: int = 0, empty: bool = False, size: int = 256) -> None:
        self.grow = grow
        self.empty = empty
        self.size = size
        self.encodes = 0
        self.prompts: list[tuple[int, list[int]]] = []  # (embedding token, box)

    def encode(self, image: np.ndarray) -> np.ndarray:
        assert image.shape == (1, 3, self.size, self.size) and image.dtype == np.float32
        self.encodes += 1
        return np.full((1, 1, 1, 1), self.encodes, dtype=np.float32)

    def decode(self, embedding: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        logits = np.full((len(boxes), self.size, self.size), -10.0, dtype=np.float32)
        for i, box in enumerate(np.asarray(boxes, dtype=np.int64)):
            self.prompts.append((int(embedding.flat[0]), box.tolist()))
            if not self.empty:
                x0, y0, x1, y1 = np.clip(box + [-self.grow, -self.grow, self.grow, self.grow], 0, self.size - 1)
                logits[i, y0 : y1 + 1, x0 : x1 + 1] = 10.0
        return logits
