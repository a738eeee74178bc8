"""How closely exported graphs reproduce torch on real images: embeddings, logits and masks."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from casefiles import discover_cases
from common.overlap import dice
from inference.backends import Backend
from inference.cases import load_case
from inference.predictor import BoxPredictor

# Torch and the export must agree on this fraction of mask pixels, and stay within
# these errors, or the export is not recorded.
MIN_MASK_AGREEMENT = 0.999
MAX_EMBEDDING_ERROR = 1e-3
MAX_LOGITS_ERROR = 1e-2


@dataclass(frozen=True)
class ParityReport:
    """Largest differences between an exported backend and torch on the check images."""

    embedding_max_abs_error: float
    logits_max_abs_error: float
    mask_agreement: float
    images: int
    boxes: int

    @property
    def ok(self) -> bool:
        """Whether the export is close enough to torch to ship."""
        return (
            self.mask_agreement >= MIN_MASK_AGREEMENT
            and self.embedding_max_abs_error <= MAX_EMBEDDING_ERROR
            and self.logits_max_abs_error <= MAX_LOGITS_ERROR
        )

    def summary(self) -> str:
        """One line with every figure."""
        return (
            f"{self.images} images, {self.boxes} boxes; max abs error embedding {self.embedding_max_abs_error:.2e} "
            f"(limit {MAX_EMBEDDING_ERROR:.0e}), logits {self.logits_max_abs_error:.2e} (limit {MAX_LOGITS_ERROR:.0e}); "
            f"masks agree on {self.mask_agreement:.5%} of pixels (limit {MIN_MASK_AGREEMENT:.1%})"
        )

    def as_record(self) -> dict[str, float | int]:
        """The figures for an export record, rounded to what they mean."""
        record = asdict(self)
        record["embedding_max_abs_error"] = float(f"{self.embedding_max_abs_error:.3g}")
        record["logits_max_abs_error"] = float(f"{self.logits_max_abs_error:.3g}")
        record["mask_agreement"] = round(self.mask_agreement, 6)
        return record


def check_parity(
    reference: Backend, exported: dict[str, Backend], images: list[tuple[np.ndarray, np.ndarray]], input_size: int = 256
) -> dict[str, ParityReport]:
    """Compare each exported backend with the `reference` (torch) on (image, pixel boxes) pairs."""
    ref = BoxPredictor(reference, input_size)
    predictors = {name: BoxPredictor(backend, input_size) for name, backend in exported.items()}
    emb_err = dict.fromkeys(exported, 0.0)
    logit_err = dict.fromkeys(exported, 0.0)
    agree = dict.fromkeys(exported, 0)
    total = n_boxes = 0
    for image, boxes in images:
        ref_emb = ref.embed(image)
        model_boxes = ref.to_model_space(boxes, ref_emb.original_shape).astype(np.float32)
        ref_logits = reference.decode(ref_emb.embedding, model_boxes)
        ref_masks = list(ref.predict(ref_emb, model_boxes))
        for name, predictor in predictors.items():
            exp_emb = predictor.embed(image)
            emb_err[name] = max(emb_err[name], float(np.abs(ref_emb.embedding - exp_emb.embedding).max()))
            # The same embedding into both decoders isolates the decoder's own error.
            exp_logits = predictor.backend.decode(ref_emb.embedding, model_boxes)
            logit_err[name] = max(logit_err[name], float(np.abs(ref_logits - exp_logits).max()))
            masks = predictor.predict(exp_emb, model_boxes)
            agree[name] += sum(int((a == b).sum()) for a, b in zip(ref_masks, masks))
        total += sum(mask.size for mask in ref_masks)
        n_boxes += len(boxes)
    return {
        name: ParityReport(emb_err[name], logit_err[name], agree[name] / max(total, 1), len(images), n_boxes)
        for name in exported
    }


def mean_box_dice(
    reference: Backend, other: Backend, images: list[tuple[np.ndarray, np.ndarray]], input_size: int = 256
) -> float:
    """Mean Dice, over every box of the (image, pixel boxes) pairs, of `other`'s full-size masks against `reference`'s."""
    ref, oth = BoxPredictor(reference, input_size), BoxPredictor(other, input_size)
    values = []
    for image, boxes in images:
        ref_emb, oth_emb = ref.embed(image), oth.embed(image)
        model_boxes = ref.to_model_space(boxes, ref_emb.original_shape)
        for a, b in zip(ref.predict(ref_emb, model_boxes), oth.predict(oth_emb, model_boxes)):
            values.append(dice(a, b))
    return float(np.mean(values))


def check_images(input_dir: Path, max_boxes: int = 24, boxes_per_volume: int = 4) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, pixel boxes) pairs from a folder of cases: each 2D image, and each 3D box's middle slice."""
    pairs = []
    for path in discover_cases(input_dir):
        case = load_case(path)
        if not case.is_3d:
            pairs.append((case.image, case.boxes[:max_boxes]))
            continue
        for box in case.boxes[:boxes_per_volume]:
            z = int((box[5] - box[2]) / 2 + box[2])
            pairs.append((case.image[z], box[None, [0, 1, 3, 4]]))
    if not pairs:
        raise ValueError(f"no cases to check the export against in {input_dir}")
    return pairs
