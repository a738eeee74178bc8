"""Post-training int8 quantisation of the encoder IR with NNCF, calibrated on real training cases.

The layers whose int8 arithmetic moves masks most (found by
`python -m inference.export.sensitivity`) stay in f32; everything else runs in int8.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from casefiles import discover_cases
from inference.cases import load_case
from inference.transforms import preprocess

if TYPE_CHECKING:
    import openvino as ov

SLICES_PER_VOLUME = 12
# Encoder layers kept in f32: the first three that an earlier inference.export.sensitivity
# search reverted. On the training cases it ranks the first of them first too (the int8
# encoder's mean box Dice against f32 0.901 -> 0.909); no single layer breaks the masks.
F32_LAYERS: tuple[str, ...] = (
    "/image_encoder/layers.0/blocks.0/conv1/c/Conv/WithoutBiases",
    "/image_encoder/layers.1/blocks.0/local_conv/c/Conv/WithoutBiases",
    "/image_encoder/layers.1/blocks.1/attn/MatMul_1",
)
WEIGHTED_OPS = ("Convolution", "GroupConvolution", "MatMul")


def calibration_images(input_dir: Path, slices_per_volume: int = SLICES_PER_VOLUME) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, pixel boxes on it) from a folder of cases: each 2D image, and evenly spaced slices inside each volume's boxes."""
    pairs = []
    for path in discover_cases(input_dir):
        case = load_case(path)
        if not case.is_3d:
            pairs.append((case.image, case.boxes))
            continue
        covered = sorted({z for box in case.boxes for z in range(int(box[2]), int(box[5]) + 1)})
        for i in np.unique(np.linspace(0, len(covered) - 1, min(slices_per_volume, len(covered))).round().astype(int)):
            z = covered[i]
            pairs.append((case.image[z], np.array([box[[0, 1, 3, 4]] for box in case.boxes if box[2] <= z <= box[5]])))
    if not pairs:
        raise ValueError(f"no cases to calibrate on in {input_dir}")
    return pairs


def calibration_inputs(input_dir: Path, input_size: int = 256) -> list[np.ndarray]:
    """The encoder inputs of `calibration_images`."""
    return [preprocess(image, input_size)[0] for image, _ in calibration_images(input_dir)]


def quantize_model(model: "ov.Model", inputs: list[np.ndarray], f32_layers: tuple[str, ...] = F32_LAYERS) -> "ov.Model":
    """The int8 model (NNCF, transformer preset), with `f32_layers` left in f32."""
    import nncf

    nncf.set_log_level(logging.ERROR)  # otherwise a line per layer it leaves alone

    return nncf.quantize(
        model,
        nncf.Dataset(inputs),
        subset_size=len(inputs),
        model_type=nncf.ModelType.TRANSFORMER,
        ignored_scope=nncf.IgnoredScope(names=list(f32_layers), validate=False),
    )


def quantize_encoder(encoder_xml: Path, inputs: list[np.ndarray], out_xml: Path) -> Path:
    """Write the int8 encoder IR (F32_LAYERS kept in f32) to `out_xml` and its .bin."""
    import openvino as ov

    ov.save_model(quantize_model(ov.Core().read_model(str(encoder_xml)), inputs), str(out_xml), compress_to_fp16=False)
    return out_xml


def int8_layers(model: "ov.Model") -> set[str]:
    """Names of the convolutions and matrix products whose input is quantised."""
    layers = set()
    for op in model.get_ordered_ops():
        if op.get_type_name() in WEIGHTED_OPS and op.input(0).get_source_output().get_node().get_type_name() == "FakeQuantize":
            layers.add(op.get_friendly_name())
    return layers
