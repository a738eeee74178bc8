"""Find the encoder layers that must stay f32 for int8 to keep the masks (slow: tens of minutes).

`python -m inference.export.sensitivity --model litemedsam --check-data demo_data/inputs`
quantises the exported f32 encoder IR with NNCF's accuracy control: every quantised
layer is ranked by how much reverting it to f32 restores the masks, and layers are
reverted in that order until the mean per-box Dice of the low-resolution masks
against the f32 encoder's (same f32 decoder) is within `--max-drop`. It prints the
reverted layers, which go into `inference.export.quantize.F32_LAYERS`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from checkpoints.manifest import exported_files
from common.overlap import dice
from inference.backends import EXPORTED_GRAPHS, OpenVinoBackend
from inference.config import MODEL_CONFIGS, get_config
from inference.export.quantize import calibration_images, int8_layers, quantize_model
from inference.threads import available_cpus
from inference.transforms import preprocess, scale_boxes

BOXES_PER_IMAGE = 12


def validation_items(
    reference: OpenVinoBackend, input_dir: Path, input_size: int, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(encoder input, model-space boxes, f32 low-res masks) on the calibration images, at most BOXES_PER_IMAGE each."""
    rng = np.random.default_rng(seed)
    items = []
    for image, boxes in calibration_images(input_dir):
        if len(boxes) > BOXES_PER_IMAGE:
            boxes = boxes[rng.choice(len(boxes), BOXES_PER_IMAGE, replace=False)]
        model_input = preprocess(image, input_size)[0]
        model_boxes = scale_boxes(boxes, image.shape[:2], input_size).astype(np.float32)
        masks = reference.decode(reference.encode(model_input), model_boxes) > 0
        items.append((model_input, model_boxes, masks))
    return items


def main(argv: list[str] | None = None) -> int:
    """Run the accuracy-controlled quantisation and print the layers it kept in f32."""
    parser = argparse.ArgumentParser(prog="python -m inference.export.sensitivity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="litemedsam", choices=sorted(MODEL_CONFIGS))
    parser.add_argument("--check-data", type=Path, required=True, help="folder of case .npz files (never evaluation cases)")
    parser.add_argument("--max-drop", type=float, default=0.01, help="allowed drop of the mean per-box mask Dice")
    parser.add_argument("--save", type=Path, help="also write the resulting int8 encoder IR here (.xml)")
    args = parser.parse_args(argv)
    import nncf
    import openvino as ov

    logging.basicConfig(level=logging.INFO)
    files = exported_files(args.model, "openvino")
    reference = OpenVinoBackend(*(files[part] for part in EXPORTED_GRAPHS), available_cpus())
    items = validation_items(reference, args.check_data, get_config(args.model).input_size)

    def validate(compiled: ov.CompiledModel, batch) -> tuple[float, list[float]]:
        request = compiled.create_infer_request()
        per_image = []
        for model_input, boxes, masks in batch:
            embedding = request.infer({"image": model_input})[0].copy()
            found = reference.decode(embedding, boxes) > 0
            per_image.append(float(np.mean([dice(a, b) for a, b in zip(masks, found)])))
        return float(np.mean(per_image)), per_image

    model = ov.Core().read_model(str(files["encoder"]))
    quantized = nncf.quantize_with_accuracy_control(
        model,
        nncf.Dataset([item[0] for item in items]),
        nncf.Dataset(items, lambda item: item[0]),
        validate,
        max_drop=args.max_drop,
        drop_type=nncf.DropType.ABSOLUTE,
        subset_size=len(items),
        model_type=nncf.ModelType.TRANSFORMER,
        advanced_accuracy_restorer_parameters=nncf.AdvancedAccuracyRestorerParameters(
            ranking_subset_size=len(items), num_ranking_workers=1),
    )
    if args.save:
        ov.save_model(quantized, str(args.save), compress_to_fp16=False)
    plain = int8_layers(quantize_model(model, [item[0] for item in items], f32_layers=()))
    kept = sorted(plain - int8_layers(quantized))
    print(f"{len(kept)} of {len(plain)} quantisable layers kept in f32:")
    for name in kept:
        print(f'    "{name}",')
    return 0


if __name__ == "__main__":
    sys.exit(main())
