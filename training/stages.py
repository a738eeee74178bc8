"""The distillation stages as training tasks over the teacher cache (see `training.loop`)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from inference.modeling.lite_medsam import LiteMedSAM
from training.cache import TeacherCache, read_rows
from training.data import INPUT_SIZE, jitter_boxes
from training.loop import to_device


def relative_mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE over the target's variance: 1 - R^2, comparable across stages of different scale."""
    output, target = output.float(), target.float()
    return F.mse_loss(output, target) / target.var().clamp_min(1e-8)


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft Dice loss per mask, averaged; `target` holds probabilities or 0/1."""
    probs = torch.sigmoid(logits).flatten(1)
    target = target.flatten(1)
    overlap = (probs * target).sum(1)
    return (1 - (2 * overlap + 1) / (probs.sum(1) + target.sum(1) + 1)).mean()


class _Task(nn.Module):
    def __init__(self, student: LiteMedSAM, cache: TeacherCache, trained: nn.Module) -> None:
        super().__init__()
        self.student = student
        self.cache = cache
        for p in student.parameters():
            p.requires_grad_(False)
        for p in trained.parameters():
            p.requires_grad_(True)
        # Batch norm keeps the teacher's running statistics (batches here are a few images).
        self.eval()


class LocalStageTask(_Task):
    """Student encoder stage i imitates the teacher's stage i output from the teacher's stage i input."""

    def __init__(self, student: LiteMedSAM, cache: TeacherCache, stage: int) -> None:
        super().__init__(student, cache, student.image_encoder.layers[stage])
        self.stage = stage
        # A plain list, not submodules: these belong to the student already.
        self.batchnorms = [m for m in student.image_encoder.layers[stage].modules() if isinstance(m, nn.BatchNorm2d)]

    @torch.no_grad()
    def recalibrate(self, indices: list[int], batch_size: int = 4) -> None:
        """Re-estimate the stage's batch-norm statistics on cached inputs.

        Blocks the student drops change what later layers receive, so the teacher's
        running statistics no longer fit; fresh ones cut the starting loss severalfold.
        """
        momenta = [bn.momentum for bn in self.batchnorms]
        for bn in self.batchnorms:
            bn.reset_running_stats()
            bn.momentum = None  # a cumulative average over all calibration batches
            bn.train()
        device = next(self.student.parameters()).device
        for begin in range(0, len(indices), batch_size):
            self(to_device(self.batch(indices[begin : begin + batch_size], torch.Generator()), device))
        for bn, momentum in zip(self.batchnorms, momenta):
            bn.momentum = momentum
            bn.eval()

    def batch(self, indices: list[int], generator: torch.Generator) -> dict[str, torch.Tensor]:
        source = "image" if self.stage == 0 else f"layer{self.stage - 1}"
        return {"input": self.cache.get(source, indices), "target": self.cache.get(f"layer{self.stage}", indices)}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        encoder = self.student.image_encoder
        x = batch["input"]
        if self.stage == 0:
            x = encoder.patch_embed(x)
        return {"loss": relative_mse(encoder.layers[self.stage](x), batch["target"])}


class EncoderTask(_Task):
    """The whole student encoder imitates the teacher's final embedding."""

    def __init__(self, student: LiteMedSAM, cache: TeacherCache) -> None:
        super().__init__(student, cache, student.image_encoder)

    def batch(self, indices: list[int], generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {"image": self.cache.get("image", indices), "target": self.cache.get("embedding", indices)}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"loss": relative_mse(self.student.image_encoder(batch["image"]), batch["target"])}


class DecoderTask(_Task):
    """The student mask decoder imitates the teacher's masks and IoU for box prompts.

    The teacher decodes its own embeddings; the student decodes `student_embeddings`
    (its encoder's, as at inference) where given, else the teacher's. Each image gets
    `boxes_per_image` prompts: with probability `object_rate` one of its object boxes
    moved by up to `jitter` pixels, else a random box inside the image. Boxes of
    labelled objects add Dice + BCE against the label, times `gt_weight`.
    """

    def __init__(
        self,
        student: LiteMedSAM,
        teacher: LiteMedSAM,
        cache: TeacherCache,
        *,
        boxes_per_image: int,
        object_rate: float,
        gt_weight: float,
        jitter: int = 4,
        student_embeddings: np.ndarray | None = None,
    ) -> None:
        super().__init__(student, cache, student.mask_decoder)
        self.student_embeddings = student_embeddings
        # A bound method, not a submodule: the teacher's weights stay out of this task's
        # parameters and state dict, so DDP and the optimiser never see them.
        self.teacher_decode = teacher.eval().requires_grad_(False).decode
        self.boxes_per_image = boxes_per_image
        self.jitter = jitter
        self.object_rate = object_rate
        self.gt_weight = gt_weight

    def _random_box(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        content = image.abs().sum(0) > 0
        rows, cols = content.any(1).nonzero(), content.any(0).nonzero()
        high = (int(cols.max()) if len(cols) else INPUT_SIZE - 1, int(rows.max()) if len(rows) else INPUT_SIZE - 1)
        corners = [torch.randint(0, max(h, 1) + 1, (2,), generator=generator).sort().values for h in high]
        return torch.tensor([corners[0][0], corners[1][0], corners[0][1], corners[1][1]], dtype=torch.float32)

    def batch(self, indices: list[int], generator: torch.Generator) -> dict[str, torch.Tensor]:
        images = self.cache.get("image", indices)
        labels = self.cache.get("labels", indices)
        all_boxes = self.cache.get("boxes", indices)
        box_labels = self.cache.get("box_labels", indices)
        counts = self.cache.get("n_boxes", indices)
        boxes, masks, weights, owners = [], [], [], []
        for row in range(len(indices)):
            for _ in range(self.boxes_per_image):
                use_object = counts[row] > 0 and torch.rand((), generator=generator) < self.object_rate
                if use_object:
                    pick = int(torch.randint(0, int(counts[row]), (), generator=generator))
                    box = jitter_boxes(all_boxes[row, pick][None], self.jitter, generator)[0]
                    label = int(box_labels[row, pick])
                else:
                    box, label = self._random_box(images[row], generator), 0
                boxes.append(box)
                masks.append((labels[row] == label) & (label > 0))
                weights.append(float(label > 0))
                owners.append(row)
        owners_t = torch.tensor(owners)
        batch = {
            "embeddings": self.cache.get("embedding", indices)[owners_t],
            "boxes": torch.stack(boxes),
            "masks": torch.stack(masks).float()[:, None],
            "weights": torch.tensor(weights),
        }
        if self.student_embeddings is not None:
            batch["student_embeddings"] = read_rows(self.student_embeddings, indices)[owners_t]
        return batch

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with torch.no_grad(), torch.autocast(batch["embeddings"].device.type, enabled=False):
            teacher_logits, teacher_iou = self.teacher_decode(batch["embeddings"], batch["boxes"])
        logits, iou = self.student.decode(batch.get("student_embeddings", batch["embeddings"]), batch["boxes"])
        logits, iou = logits.float(), iou.float()
        soft = torch.sigmoid(teacher_logits)
        losses = {
            "bce": F.binary_cross_entropy_with_logits(logits, soft),
            "dice": dice_loss(logits, soft),
            "iou": F.mse_loss(iou, teacher_iou),
        }
        total = losses["bce"] + losses["dice"] + losses["iou"]
        weights = batch["weights"]
        if self.gt_weight > 0 and weights.sum() > 0:
            labelled = weights > 0
            gt = batch["masks"][labelled]
            losses["gt"] = dice_loss(logits[labelled], gt) + F.binary_cross_entropy_with_logits(logits[labelled], gt)
            total = total + self.gt_weight * losses["gt"]
        else:
            losses["gt"] = torch.zeros(())
        return {"loss": total, **losses}
