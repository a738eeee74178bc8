"""How closely exported graphs reproduce torch on real images: embeddings, logits and masks."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from inference.backends import Backend
from casefiles import discover_cases
from inference.io import load_case
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
    reference: Backend, exported: Backend, images: list[tuple[np.ndarray, np.ndarray]], image_size: int = 256
) -> ParityReport:
    """Compare `exported` with the `reference` (torch) backend on (image, pixel boxes) pairs."""
    ref, exp = BoxPredictor(reference, image_size), BoxPredictor(exported, image_size)
    emb_err = logit_err = 0.0
    agree = total = n_boxes = 0
    for image, boxes in images:
        ref_emb, exp_emb = ref.embed(image), exp.embed(image)
        emb_err = max(emb_err, float(np.abs(ref_emb.embedding - exp_emb.embedding).max()))
        model_boxes = ref.to_model_space(boxes, ref_emb.original_shape).astype(np.float32)
        # The same embedding into both decoders isolates the decoder's own error.
        ref_logits = reference.decode(ref_emb.embedding, model_boxes)
        exp_logits = exported.decode(ref_emb.embedding, model_boxes)
        logit_err = max(logit_err, float(np.abs(ref_logits - exp_logits).max()))
        for ref_mask, exp_mask in zip(ref.predict(ref_emb, model_boxes), exp.predict(exp_emb, model_boxes)):
            agree += int((ref_mask == exp_mask).sum())
            total += ref_mask.size
        n_boxes += len(boxes)
    return ParityReport(emb_err, logit_err, agree / max(total, 1), len(images), n_boxes)


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
