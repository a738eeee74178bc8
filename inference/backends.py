"""Backends behind one interface: encode a model-space image, decode boxes against an embedding.

OpenVINO is the default backend, ONNX Runtime the alternative; the torch backend is
the reference. Each engine is imported only when its backend is built.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

import numpy as np

if TYPE_CHECKING:
    import openvino as ov

    from inference.modeling.lite_medsam import LiteMedSAM

LOG = logging.getLogger("inference")


Prepared = TypeVar("Prepared")
# The exported graphs, in the order the exported backends take them.
EXPORTED_GRAPHS = ("encoder", "decoder_image", "decoder_box")
# The tensors the decoder's image half hands to its box half (names in the exported graphs).
DECODER_HANDOFF = ("keys", "image_k", "image_v", "image_q")


class LastImage(Generic[Prepared]):
    """The decoder's image half for the embedding decoded last: every box on that image reuses it.

    The image half (the first block's projections of the 64x64 features) does not
    depend on the box; it is about a fifth of the decoder's arithmetic.
    """

    def __init__(self, compute: Callable[[np.ndarray], Prepared]) -> None:
        self._compute = compute
        self._embedding: np.ndarray | None = None
        self._prepared: Prepared | None = None

    def prepared(self, embedding: np.ndarray) -> Prepared:
        """The image half for `embedding`, computed unless it is the same array as last time."""
        if embedding is not self._embedding or self._prepared is None:
            self._prepared = self._compute(embedding)
            self._embedding = embedding
        return self._prepared


class Backend(Protocol):
    """Encoder and decoder of one model, and how many boxes one decoder call should take."""

    decode_batch: int

    def encode(self, image: np.ndarray) -> np.ndarray:
        """(1, 3, S, S) float32 model input -> (1, C, h, w) float32 embedding."""

    def decode(self, embedding: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """(1, C, h, w) embedding and (B, 4) model-space boxes -> (B, S, S) float32 mask logits."""


class OnnxBackend:
    """Exported encoder and decoder run with ONNX Runtime on the CPU."""

    # Larger batches were no faster per box (python -m benchmarks.latency) and nearly
    # tripled peak memory.
    decode_batch = 1

    def __init__(self, encoder: Path, decoder_image: Path, decoder_box: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        self._encoder = ort.InferenceSession(str(encoder), options, providers=providers)
        image_half = ort.InferenceSession(str(decoder_image), options, providers=providers)
        self._decoder = ort.InferenceSession(str(decoder_box), options, providers=providers)
        self._image = LastImage(lambda embedding: image_half.run(None, {"image_embeddings": embedding}))

    def encode(self, image: np.ndarray) -> np.ndarray:
        """Run the encoder graph."""
        return self._encoder.run(None, {"image": image})[0]

    def decode(self, embedding: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Run the decoder's box half (and its image half for a new embedding)."""
        feeds = dict(zip(DECODER_HANDOFF, self._image.prepared(embedding)))
        feeds["boxes"] = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        return self._decoder.run(["low_res_logits"], feeds)[0][:, 0]


# The arithmetic OpenVINO can be told to use on the CPU.
COMPUTE_PRECISIONS = ("f32", "bf16")


class OpenVinoBackend:
    """OpenVINO IR of the exported encoder and decoder, compiled for the CPU.

    The encoder's arithmetic (`compute`: f32 or bf16) is set explicitly, and the
    decoder always computes f32: OpenVINO would otherwise pick bf16 by itself on CPUs
    that support it, and bf16 moves masks (a bf16 decoder moved small objects further
    for little gain: the encoder is most of the time). With `cache_dir`, compiled models
    are stored there and imported on the next start instead of compiled again
    (OpenVINO recompiles and rewrites the entry when it does not fit this CPU).
    A cache that cannot be written is still read; where it cannot serve either,
    the models are compiled without a cache and nothing is written (`cache_dir`
    then reads None).
    """

    # The box half's IR takes one box per call (inference.export.openvino_files): with a
    # dynamic batch, batches of 4 and 16 cost as much per box as batch 1 (one thread,
    # LiteMedSAM, python -m benchmarks.latency) and its buffers took more memory.
    decode_batch = 1

    def __init__(
        self,
        encoder: Path,
        decoder_image: Path,
        decoder_box: Path,
        threads: int,
        compute: str = "f32",
        cache_dir: Path | None = None,
    ) -> None:
        import openvino as ov

        if compute not in COMPUTE_PRECISIONS:
            raise ValueError(f"compute must be one of {', '.join(COMPUTE_PRECISIONS)}, got {compute!r}")
        core = ov.Core()
        self.cache_dir = _open_cache(core, cache_dir)
        config = {
            "INFERENCE_PRECISION_HINT": compute,
            "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            # OpenVINO would pin its threads to the first cores of the process's CPU set: two processes
            # (--workers 2, Dask workers, two containers) then share one core at half speed each.
            "ENABLE_CPU_PINNING": False,
        }
        self._encoder = self._compile(core, encoder, config).create_infer_request()
        # The decoder's attention products run faster as plain matrix products than as
        # OpenVINO's fused "snippets" (box half, one thread: 31 against 35 ms per box).
        decoder_config = config | {"INFERENCE_PRECISION_HINT": "f32", "SNIPPETS_MODE": "DISABLE"}
        image_half = self._compile(core, decoder_image, decoder_config).create_infer_request()
        self._decoder = self._compile(core, decoder_box, decoder_config).create_infer_request()

        def run_image_half(embedding: np.ndarray) -> list[np.ndarray]:
            outputs = image_half.infer({"image_embeddings": embedding})
            # Copied out: OpenVINO reuses its output buffers on the next call.
            return [outputs[name].copy() for name in DECODER_HANDOFF]

        self._image = LastImage(run_image_half)
        self._image_half = image_half

    def _compile(self, core: ov.Core, model: Path, config: dict) -> ov.CompiledModel:
        """Compile `model` for the CPU, through the cache while there is one."""
        try:
            return core.compile_model(str(model), "CPU", config)
        except RuntimeError:
            # A cached blob this CPU cannot import (another CPU's, or damaged) is deleted and
            # written again, which fails in a folder it cannot write (docker run --read-only,
            # or --user with the image's root-owned cache). Any other error is raised again.
            if self.cache_dir is None or os.access(self.cache_dir, os.W_OK):
                raise
        LOG.info("OpenVINO cache %s does not fit this CPU and cannot be rewritten: compiling without it",
                 self.cache_dir)
        core.set_property({"CACHE_DIR": ""})
        self.cache_dir = None
        return core.compile_model(str(model), "CPU", config)

    @property
    def inference_precisions(self) -> dict[str, str]:
        """Per exported graph, the precision it really runs in, as OpenVINO reports it ('f32', 'bf16')."""
        requests = zip(EXPORTED_GRAPHS, (self._encoder, self._image_half, self._decoder))
        return {graph: request.get_compiled_model().get_property("INFERENCE_PRECISION_HINT").to_string()
                for graph, request in requests}

    def encode(self, image: np.ndarray) -> np.ndarray:
        """Run the encoder IR; the result is copied out of OpenVINO's output buffer."""
        return self._encoder.infer({"image": image})[0].copy()

    def decode(self, embedding: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Run the decoder's box half IR once per box (and its image half for a new embedding)."""
        feeds = dict(zip(DECODER_HANDOFF, self._image.prepared(embedding)))
        logits = []
        for box in np.asarray(boxes, dtype=np.float32).reshape(-1, 1, 4):
            feeds["boxes"] = box
            logits.append(self._decoder.infer(feeds)["low_res_logits"][:, 0].copy())
        if not logits:
            return np.empty((0, *self._decoder.get_compiled_model().output("low_res_logits").get_shape()[2:]), np.float32)
        return np.concatenate(logits)


def without_openvino_conversion_tools() -> None:
    """Make `import openvino` in this process skip its model conversion tools, as in the image.

    Inference reads IR and never converts. `import openvino` imports the
    conversion tools (and their telemetry) inside a try/except ImportError; marking
    them absent saves about 0.1 s of start-up. The image leaves them out altogether.
    Only for processes that never export: the CLI calls it before its first import.
    """
    sys.modules.setdefault("openvino.tools.ovc", None)


def _open_cache(core: ov.Core, cache_dir: Path | None) -> Path | None:
    """Point `core`'s compiled-model cache at `cache_dir`; None (no cache) where the folder cannot be created."""
    if cache_dir is None:
        return None
    try:
        core.set_property({"CACHE_DIR": str(cache_dir)})
    except RuntimeError:  # OpenVINO creates the folder here: a read-only file system, no permission
        LOG.info("OpenVINO cache %s cannot be created: compiling without a cache", cache_dir)
        return None
    return cache_dir


class TorchBackend:
    """The reference torch model; with `compute="bf16"` its encoder's matrix products and convolutions compute as
    bf16 hardware does, on any CPU (inference.bf16_emulation), and the decoder f32, as OpenVINO's bf16 runs: how
    bf16 moves masks can be measured where OpenVINO would compute f32, at f32 speed."""

    # Batching amortises eager-mode overhead per call; torch is the reference, not the fast path.
    decode_batch = 16

    def __init__(self, model: LiteMedSAM, threads: int, compute: str = "f32") -> None:
        import torch

        if compute not in COMPUTE_PRECISIONS:
            raise ValueError(f"compute must be one of {', '.join(COMPUTE_PRECISIONS)}, got {compute!r}")
        torch.set_num_threads(threads)
        self._torch = torch
        self._bf16 = compute == "bf16"
        self.model = model.eval()

    def _running(self, bf16: bool = False) -> ExitStack:
        """Inference mode, with bf16 products where `bf16`."""
        stack = ExitStack()
        stack.enter_context(self._torch.inference_mode())
        if bf16:
            from inference.bf16_emulation import Bf16Products

            stack.enter_context(Bf16Products())
        return stack

    def encode(self, image: np.ndarray) -> np.ndarray:
        """Run the image encoder."""
        with self._running(self._bf16):
            return self.model.image_encoder(self._torch.from_numpy(image)).numpy()

    def decode(self, embedding: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Run the prompt encoder and mask decoder."""
        torch = self._torch
        with self._running():
            box_tensor = torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
            logits, _ = self.model.decode(torch.from_numpy(embedding), box_tensor)
            return logits[:, 0].numpy()
