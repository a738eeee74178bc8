"""Find the encoder layers that must stay f32 for int8 to keep the masks (slow: tens of minutes).

`python -m inference.export.sensitivity --model litemedsam --calibration-data DATA/train/inputs`
quantises the exported f32 encoder IR with NNCF's accuracy control: calibrated on
every 2D image and `--slices-per-volume` slices of each volume of the folder, every
quantised layer is ranked by how much reverting it to f32 restores the masks, and
layers are reverted in that order until the mean Dice of the low-resolution masks
against the f32 encoder's (same f32 decoder; every box counts once, so images with many
small objects weigh as much as their objects) is within `--max-drop`. The folder must
be training data (`python -m training.images`), never the demo or evaluation cases the
int8 encoder is later judged on. It prints the reverted layers, which go into
`inference.export.quantize.F32_LAYERS`, and with `--report` writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from checkpoints.manifest import exported_files
from common.atomic import write_atomic
from common.overlap import dice
from inference.backends import EXPORTED_GRAPHS, OpenVinoBackend
from inference.config import MODEL_CONFIGS, get_config
from inference.export.quantize import SLICES_PER_VOLUME, calibration_images, int8_layers, quantize_model
from inference.threads import available_cpus
from inference.transforms import preprocess, scale_boxes

if TYPE_CHECKING:
    import openvino as ov

BOXES_PER_IMAGE = 12
# The result is validated on every VALIDATION_STRIDE-th calibration image; layers are
# ranked on the RANKING_IMAGES of them that int8 moves most (ranking runs the encoder
# over them once per quantised layer: about 80 layers).
VALIDATION_STRIDE = 3
RANKING_IMAGES = 12


def validation_items(
    reference: OpenVinoBackend, pairs: list[tuple[np.ndarray, np.ndarray]], input_size: int, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(encoder input, model-space boxes, f32 low-res masks) per image, at most BOXES_PER_IMAGE boxes each."""
    rng = np.random.default_rng(seed)
    items = []
    for image, boxes in pairs:
        if len(boxes) > BOXES_PER_IMAGE:
            boxes = boxes[rng.choice(len(boxes), BOXES_PER_IMAGE, replace=False)]
        model_input = preprocess(image, input_size)[0]
        model_boxes = scale_boxes(boxes, image.shape[:2], input_size).astype(np.float32)
        masks = reference.decode(reference.encode(model_input), model_boxes) > 0
        items.append((model_input, model_boxes, masks))
    return items


def item_dices(reference: OpenVinoBackend, encoder: "ov.CompiledModel", items) -> list[list[float]]:
    """Per item, the Dice of each box's low-res mask from `encoder`'s embedding against the item's f32 masks."""
    request = encoder.create_infer_request()
    dices = []
    for model_input, boxes, masks in items:
        found = reference.decode(request.infer({"image": model_input})[0].copy(), boxes) > 0
        dices.append([dice(a, b) for a, b in zip(masks, found)])
    return dices


def main(argv: list[str] | None = None) -> int:
    """Run the accuracy-controlled quantisation and print the layers it kept in f32."""
    parser = argparse.ArgumentParser(prog="python -m inference.export.sensitivity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="litemedsam", choices=sorted(MODEL_CONFIGS))
    parser.add_argument("--calibration-data", type=Path, required=True,
                        help="folder of training case .npz files (never demo or evaluation cases)")
    parser.add_argument("--slices-per-volume", type=int, default=SLICES_PER_VOLUME,
                        help="calibration slices taken inside each volume's boxes (default: %(default)s)")
    parser.add_argument("--max-drop", type=float, default=0.01, help="allowed drop of the mean per-box mask Dice")
    parser.add_argument("--save", type=Path, help="also write the resulting int8 encoder IR here (.xml)")
    parser.add_argument("--report", type=Path, help="write the reverted layers and the measured Dice here (.json)")
    args = parser.parse_args(argv)
    import nncf
    import openvino as ov

    logging.basicConfig(level=logging.INFO)
    started = time.perf_counter()
    files = exported_files(args.model, "openvino")
    reference = OpenVinoBackend(*(files[part] for part in EXPORTED_GRAPHS), available_cpus())
    input_size = get_config(args.model).input_size
    pairs = calibration_images(args.calibration_data, args.slices_per_volume)
    inputs = [preprocess(image, input_size)[0] for image, _ in pairs]
    items = validation_items(reference, pairs[::VALIDATION_STRIDE], input_size)

    def validate(compiled: ov.CompiledModel, batch) -> tuple[float, list[float]]:
        """The mean Dice over every box of `batch`, and each image's mean (NNCF ranks by the latter)."""
        per_item = item_dices(reference, compiled, batch)
        return float(np.mean([d for boxes in per_item for d in boxes])), [float(np.mean(boxes)) for boxes in per_item]

    model = ov.Core().read_model(str(files["encoder"]))
    quantized = nncf.quantize_with_accuracy_control(
        model,
        nncf.Dataset(inputs),
        nncf.Dataset(items, lambda item: item[0]),
        validate,
        max_drop=args.max_drop,
        drop_type=nncf.DropType.ABSOLUTE,
        subset_size=len(inputs),
        model_type=nncf.ModelType.TRANSFORMER,
        advanced_accuracy_restorer_parameters=nncf.AdvancedAccuracyRestorerParameters(
            ranking_subset_size=min(RANKING_IMAGES, len(items)), num_ranking_workers=1),
    )
    if args.save:
        ov.save_model(quantized, str(args.save), compress_to_fp16=False)
    plain = int8_layers(quantize_model(model, inputs, f32_layers=()))
    kept = sorted(plain - int8_layers(quantized))
    compiled = ov.Core().compile_model(quantized, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    per_box = [d for boxes in item_dices(reference, compiled, items) for d in boxes]
    mean_dice = float(np.mean(per_box))
    print(f"{len(kept)} of {len(plain)} quantisable layers kept in f32 "
          f"(mean per-box Dice against f32 {mean_dice:.4f}, least {min(per_box):.4f}, {len(per_box)} boxes):")
    for name in kept:
        print(f'    "{name}",')
    if args.report:
        write_atomic(args.report, json.dumps({
            "model": args.model, "calibration_images": len(inputs), "validation_images": len(items),
            "validation_boxes": len(per_box), "max_drop": args.max_drop, "quantisable_layers": len(plain),
            "kept_f32": kept, "mean_box_dice_vs_f32": round(mean_dice, 4), "least_box_dice_vs_f32": round(min(per_box), 4),
            "seconds": round(time.perf_counter() - started),
        }, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
