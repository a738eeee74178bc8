"""Runtimes behind one interface: encode a model-space image, decode boxes against an embedding.

The ONNX Runtime backend is what the image ships; the torch backend is the
reference and is imported only when asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from inference.modeling.lite_medsam import LiteMedSAM


class Backend(Protocol):
    """Encoder and decoder of one model."""

    def encode(self, image: np.ndarray) -> np.ndarray:
        """(1, 3, S, S) float32 model input -> (1, C, h, w) float32 embedding."""

    def decode(self, embedding: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """(1, C, h, w) embedding and (B, 4) model-space boxes -> (B, S, S) float32 mask logits."""


class OnnxBackend:
    """Exported encoder and decoder run with ONNX Runtime on the CPU."""

    def __init__(self, encoder_path: Path, decoder_path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        self._encoder = ort.InferenceSession(str(encoder_path), options, providers=providers)
        self._decoder = ort.InferenceSession(str(decoder_path), options, providers=providers)

    def encode(self, image: np.ndarray) -> np.ndarray:
        """Run the encoder graph."""
        return self._encoder.run(None, {"image": image})[0]

    def decode(self, embedding: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Run the prompt encoder + mask decoder graph."""
        feeds = {"image_embeddings": embedding, "boxes": np.asarray(boxes, dtype=np.float32).reshape(-1, 4)}
        return self._decoder.run(["low_res_logits"], feeds)[0][:, 0]


class TorchBackend:
    """The reference torch model."""

    def __init__(self, model: LiteMedSAM, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self._torch = torch
        self._model = model.eval()

    def encode(self, image: np.ndarray) -> np.ndarray:
        """Run the image encoder."""
        with self._torch.inference_mode():
            return self._model.image_encoder(self._torch.from_numpy(image)).numpy()

    def decode(self, embedding: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Run the prompt encoder and mask decoder."""
        torch = self._torch
        with torch.inference_mode():
            box_tensor = torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
            logits, _ = self._model.decode(torch.from_numpy(embedding), box_tensor)
            return logits[:, 0].numpy()
