"""Initialise a SwiftMedSAM student from a LiteMedSAM checkpoint.

Every student tensor takes the teacher tensor at the same place, after renumbering
the blocks that the student keeps:
- encoder blocks of stage s: `block_map[s]` (default: evenly spaced, first and last kept);
- decoder two-way layers: the first ones (only the first layer skips the prompt PE in attention);
- IoU head layers: the first ones and the last (the last maps to the IoU outputs).
A tensor of the same shape is copied. A narrower MLP keeps the hidden units with the
largest norm (|fc1 row| x |fc2 column|); any other smaller tensor (e.g. fewer heads
in a relative-position bias) takes the teacher's leading slice. The decoder's
attention projections keep their shapes when the head count drops (the internal
width stays 256 or 128), so they are copied and each student head spans teacher heads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from inference.config import get_config
from inference.modeling.lite_medsam import LiteMedSAM

BlockMap = dict[int, tuple[int, ...]]
_ENCODER_BLOCK = re.compile(r"^image_encoder\.layers\.(\d+)\.blocks\.(\d+)\.(.*)$")
_DECODER_LAYER = re.compile(r"^mask_decoder\.transformer\.layers\.(\d+)\.(.*)$")
_IOU_LAYER = re.compile(r"^mask_decoder\.iou_prediction_head\.layers\.(\d+)\.(.*)$")
# (first, second) linear layers of each MLP whose hidden width may shrink.
_MLP_PAIRS = (("mlp.lin1.", "mlp.lin2."), ("mlp.fc1.", "mlp.fc2."))


@dataclass
class InitReport:
    """Where each student tensor came from."""

    copied: dict[str, str] = field(default_factory=dict)  # student key -> teacher key
    sliced: dict[str, str] = field(default_factory=dict)  # student key -> description
    random: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """Counts, then one line per sliced, random and renumbered tensor."""
        lines = [f"copied {len(self.copied)}, sliced {len(self.sliced)}, random {len(self.random)}"]
        lines += [f"  sliced  {k}: {v}" for k, v in self.sliced.items()]
        lines += [f"  random  {k}" for k in self.random]
        lines += [f"  renamed {k} <- {v}" for k, v in self.copied.items() if k != v]
        return "\n".join(lines)


def evenly_spaced(student_depth: int, teacher_depth: int) -> tuple[int, ...]:
    """Indices of `student_depth` teacher blocks spread from the first to the last."""
    if student_depth == 1:
        return (0,)
    return tuple(round(i * (teacher_depth - 1) / (student_depth - 1)) for i in range(student_depth))


def default_block_map(student: str, teacher: str = "litemedsam") -> BlockMap:
    """Evenly spaced teacher blocks for each encoder stage."""
    s_depths, t_depths = get_config(student).encoder.depths, get_config(teacher).encoder.depths
    return {stage: evenly_spaced(d, t) for stage, (d, t) in enumerate(zip(s_depths, t_depths))}


def parse_block_map(text: str) -> BlockMap:
    """'0:1 2:0,5' -> {0: (1,), 2: (0, 5)}; stages not named keep the default."""
    mapping = {}
    for part in text.split():
        stage, blocks = part.split(":")
        mapping[int(stage)] = tuple(int(b) for b in blocks.split(","))
    return mapping


def changed_stages(student: str, teacher: str = "litemedsam") -> list[int]:
    """Encoder stages whose depth, width or heads differ between student and teacher."""
    s, t = get_config(student).encoder, get_config(teacher).encoder
    fields = ("depths", "embed_dims", "num_heads", "window_sizes")
    return [i for i in range(len(t.depths)) if any(getattr(s, f)[i] != getattr(t, f)[i] for f in fields)]


def teacher_key(key: str, block_map: BlockMap, teacher_iou_depth: int, student_iou_depth: int) -> str:
    """The teacher state-dict key a student key inherits from."""
    if match := _ENCODER_BLOCK.match(key):
        stage, block, rest = int(match[1]), int(match[2]), match[3]
        return f"image_encoder.layers.{stage}.blocks.{block_map[stage][block]}.{rest}"
    if match := _IOU_LAYER.match(key):
        layer = int(match[1])
        source = teacher_iou_depth - 1 if layer == student_iou_depth - 1 else layer
        return f"mask_decoder.iou_prediction_head.layers.{source}.{match[2]}"
    # Decoder layers keep their index: the student keeps the first ones.
    return key


def _mlp_keep(key: str, teacher: Mapping[str, torch.Tensor], width: int) -> torch.Tensor | None:
    """Hidden units to keep for a tensor of a narrowed MLP, or None if `key` is not one."""
    for first, second in _MLP_PAIRS:
        for prefix_end in (first, second):
            if prefix_end in key:
                base = key[: key.index(prefix_end)]
                w1, w2 = teacher[base + first + "weight"], teacher[base + second + "weight"]
                score = w1.norm(dim=1) * w2.norm(dim=0)
                return torch.topk(score, width).indices.sort().values
    return None


def _slice(
    key: str, source: torch.Tensor, target_shape: torch.Size, teacher: Mapping[str, torch.Tensor]
) -> tuple[torch.Tensor, str] | None:
    """Teacher tensor narrowed to the student's shape, with a description; None if it cannot be."""
    if source.ndim != len(target_shape) or any(s < t for s, t in zip(source.shape, target_shape)):
        return None
    out = source
    how = []
    for dim, (have, want) in enumerate(zip(source.shape, target_shape)):
        if have == want:
            continue
        keep = _mlp_keep(key, teacher, want)
        if keep is not None:
            out = out.index_select(dim, keep)
            how.append(f"dim {dim}: {want} of {have} hidden units with the largest norm")
        else:
            out = out.narrow(dim, 0, want)
            how.append(f"dim {dim}: leading {want} of {have}")
    return out.clone(), "; ".join(how)


def initialise_student(
    teacher_state: Mapping[str, torch.Tensor], student: str, block_map: BlockMap | None = None
) -> tuple[LiteMedSAM, InitReport]:
    """Build the student config and fill it from the teacher's state dict; report every tensor's origin."""
    model = LiteMedSAM(get_config(student))
    mapping = default_block_map(student)
    mapping.update(block_map or {})
    t_iou = get_config("litemedsam").decoder.iou_head_depth
    s_iou = get_config(student).decoder.iou_head_depth
    state = model.state_dict()
    report = InitReport()
    for key, target in state.items():
        source_key = teacher_key(key, mapping, t_iou, s_iou)
        source = teacher_state.get(source_key)
        if source is None:
            report.random.append(key)
        elif source.shape == target.shape:
            state[key] = source.clone()
            report.copied[key] = source_key
        elif (sliced := _slice(source_key, source, target.shape, teacher_state)) is not None:
            state[key], how = sliced
            report.sliced[key] = f"{source_key} {tuple(source.shape)} -> {tuple(target.shape)}, {how}"
        else:
            report.random.append(key)
    model.load_state_dict(state, strict=True)
    return model, report
