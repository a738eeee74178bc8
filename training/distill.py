"""The distillation pipeline: teacher cache, stage-local training, encoder fine-tuning, decoder, export.

Each stage writes into its own folder of the run and starts from the previous
stage's `student.pt` (the first from the teacher's blocks, or from `init`, an
earlier student); with `resume`, finished stages are skipped and an interrupted
one continues from its last checkpoint. Between encoder and decoder the
student-cache stage stores the trained encoder's embeddings for the decoder.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import distributed as dist

from checkpoints.manifest import sha256_of
from inference.build import build_model
from inference.modeling.lite_medsam import LiteMedSAM
from training.cache import TeacherCache, build_cache, build_student_embeddings, open_student_embeddings
from training.data import SliceDataset, discover_slices
from training.init import BlockMap, changed_stages, initialise_student
from training.loop import CHECKPOINT, STUDENT, TrainConfig, train, world
from training.stages import DecoderTask, EncoderTask, LocalStageTask

# float16 weights are kept only if at most this share of mask pixels changes.
FP16_MIN_AGREEMENT = 0.9995


@dataclass(frozen=True)
class DistillConfig:
    """What to distil and how long each stage trains."""

    student: str = "swiftmedsam-v2"
    views: int = 1
    views_2d: int | None = None
    max_items: int | None = None
    cache_batch: int = 2
    local: TrainConfig = field(default_factory=lambda: TrainConfig(steps=60, batch_size=2, lr=2e-5))
    encoder: TrainConfig = field(default_factory=lambda: TrainConfig(steps=40, batch_size=2, lr=1e-5))
    decoder: TrainConfig = field(default_factory=lambda: TrainConfig(steps=120, batch_size=1, lr=3e-5))
    boxes_per_image: int = 8
    object_rate: float = 0.5
    gt_weight: float = 0.0
    decoder_input: str = "student"  # whose embeddings the student decoder learns from: "student" or "teacher"
    init: str | None = None
    export_items: int = 4
    calibration_items: int = 32
    block_map: BlockMap = field(default_factory=dict)


def stage_names(student: str, decoder_input: str = "student") -> list[str]:
    """Stages in order: cache, each changed encoder stage (batch norm recalibrated first), encoder,
    student-cache (when the decoder learns from the student's embeddings), decoder, export."""
    embeddings = ["student-cache"] if decoder_input == "student" else []
    return ["cache", *(f"stage{i}" for i in changed_stages(student)), "encoder", *embeddings, "decoder", "export"]


def select_items(total: int, limit: int | None) -> list[int]:
    """Evenly spaced dataset items (every source represented), or all of them."""
    if limit is None or limit >= total:
        return list(range(total))
    return sorted({int(i) for i in np.linspace(0, total - 1, limit).round()})


def output_name(student: str) -> str:
    """File name of the exported state dict: `swiftmedsam_v2.pth` for swiftmedsam-v2."""
    return student.replace("-", "_") + ".pth"


def export_state(student: LiteMedSAM, cache: TeacherCache, path: Path, items: int = 4) -> dict:
    """Write the student's state dict, in float16 if masks of cached items stay identical, else float32."""
    state = student.state_dict()
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    rounded = build_model(student.config.name)
    rounded.load_state_dict(half)
    rows = list(range(min(items, len(cache))))
    images = cache.get("image", rows)
    boxes = torch.tensor([[32.0, 32.0, 224.0, 224.0], [64.0, 96.0, 160.0, 200.0]])
    with torch.no_grad():
        full, low = (
            m.decode(m.image_encoder(images).repeat_interleave(len(boxes), 0), boxes.repeat(len(rows), 1))[0]
            for m in (student.eval(), rounded)
        )
    agreement = float(((full > 0) == (low > 0)).float().mean())
    worst = float((full - low).abs().max())
    lossless = agreement >= FP16_MIN_AGREEMENT
    chosen = half if lossless else state
    torch.save(chosen, path)
    return {"dtype": "float16" if lossless else "float32", "mask_agreement_fp16": agreement,
            "max_abs_logit_change_fp16": worst, "bytes": path.stat().st_size}


def run_distillation(
    data: list[Path],
    run_dir: Path,
    teacher_checkpoint: Path,
    cfg: DistillConfig,
    resume: bool = False,
    only: list[str] | None = None,
    progress: bool = True,
    device: torch.device = torch.device("cpu"),
) -> dict:
    """Run (or resume) every stage, or only the named ones, with teacher and student on `device`; return the summary."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    rank, world_size = world()
    teacher = build_model("litemedsam", teacher_checkpoint).to(device)
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if resume and summary_path.is_file() else {}
    summary.update({"student": cfg.student, "data": [str(d) for d in data], "config": asdict(cfg)})
    if cfg.decoder_input not in ("student", "teacher"):
        raise ValueError(f"decoder_input must be 'student' or 'teacher', got {cfg.decoder_input!r}")
    stages = stage_names(cfg.student, cfg.decoder_input)
    refs = [ref for folder in data for ref in discover_slices(folder)]
    dataset = SliceDataset(refs, views=cfg.views, views_2d=cfg.views_2d)
    items = select_items(len(dataset), cfg.max_items)
    summary["slices"], summary["cache_items"] = len(refs), len(items)

    student, report = initialise_student(teacher.state_dict(), cfg.student, cfg.block_map)
    if cfg.init is not None:
        # load_state_dict casts a float16 checkpoint into the float32 parameters.
        student.load_state_dict(torch.load(cfg.init, map_location="cpu", weights_only=True))
    student.to(device)
    if rank == 0:
        (run_dir / "init_report.txt").write_text(report.summary() + "\n")
    cache_dir = run_dir / "cache"
    previous: Path | None = None
    embeddings_at: tuple[Path, str] | None = None  # student-cache folder and the encoder weights' sha256
    for name in stages:
        wanted = only is None or name in only
        # Every stage starts from the last finished one's weights.
        if previous is not None:
            student.load_state_dict(torch.load(previous, map_location="cpu", weights_only=True))
        if name == "cache":
            # One process writes the cache; under torchrun the others wait and then read it.
            if wanted and rank == 0:
                start = time.perf_counter()
                build_cache(teacher, dataset, items, changed_stages(cfg.student), cache_dir, cfg.cache_batch, progress)
                summary["cache_seconds"] = round(summary.get("cache_seconds", 0) + time.perf_counter() - start, 1)
            if world_size > 1:
                dist.barrier()
            cache = TeacherCache(cache_dir)
            continue
        if name == "student-cache":
            source = sha256_of(previous) if previous is not None else f"init:{cfg.init}"
            if wanted and rank == 0:
                start = time.perf_counter()
                build_student_embeddings(student, cache, run_dir / name, source, cfg.cache_batch, progress)
                summary["student_cache_seconds"] = round(
                    summary.get("student_cache_seconds", 0) + time.perf_counter() - start, 1)
            if world_size > 1:
                dist.barrier()
            embeddings_at = (run_dir / name, source)
            continue
        if name == "export":
            if wanted and rank == 0:
                path = run_dir / output_name(cfg.student)
                summary["export"] = {"path": str(path), **export_state(student.cpu(), cache, path, cfg.export_items)}
            continue
        folder = run_dir / name
        done = folder / STUDENT
        if wanted and not (resume and done.is_file()):
            embeddings = open_student_embeddings(*embeddings_at) if name == "decoder" and embeddings_at else None
            task, train_cfg = _task(name, student, teacher, cache, cfg, embeddings)
            if isinstance(task, LocalStageTask) and not (resume and (folder / CHECKPOINT).is_file()):
                task.recalibrate(select_items(len(cache), cfg.calibration_items))
            summary.setdefault("stages", {})[name] = train(task, len(cache), train_cfg, folder, resume)
        if done.is_file():
            previous = done
    if rank == 0:
        summary_path.write_text(json.dumps(summary, indent=1))
    return summary


def _task(name: str, student: LiteMedSAM, teacher: LiteMedSAM, cache: TeacherCache, cfg: DistillConfig,
          student_embeddings: np.ndarray | None):
    if name.startswith("stage"):
        return LocalStageTask(student, cache, int(name.removeprefix("stage"))), cfg.local
    if name == "encoder":
        return EncoderTask(student, cache), cfg.encoder
    return DecoderTask(student, teacher, cache, cfg.boxes_per_image, object_rate=cfg.object_rate,
                       gt_weight=cfg.gt_weight, student_embeddings=student_embeddings), cfg.decoder
